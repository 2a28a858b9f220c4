"""Request ids, optional API keys, the per-client rate limit, and CORS.

The client address comes from nginx's X-Real-IP only when the direct peer is a
trusted proxy; anyone else's forwarding headers are ignored. TRUSTED_PROXIES
holds addresses or networks (CIDR), because under docker-compose nginx gets
whatever address the network hands out.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import time
import uuid

from flask import Flask, Response, current_app, g, request
from werkzeug.wsgi import LimitedStream

from ml_worker.contract import keys
from ml_worker.contract.config import ConfigError, Settings
from ml_worker.contract.errors import ErrorCode, ServiceError

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
OPEN_PATHS = ("/api/v1/health", "/api/v1/ready", "/api/v1/openapi.json", "/api/v1/docs", "/metrics")
WINDOW_S = 60


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def trusted_networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse TRUSTED_PROXIES once at start-up, so a typo fails loudly there and not per request."""
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc}") from None


def _is_trusted(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in current_app.config["TRUSTED_NETWORKS"])


def client_address() -> str:
    peer = request.remote_addr or "unknown"
    if _is_trusted(peer):
        return request.headers.get("X-Real-IP", peer)
    return peer


def _is_open(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in OPEN_PATHS)


def _presented_key() -> str:
    auth = request.headers.get("Authorization", "")
    return request.headers.get("X-API-Key") or (auth[7:] if auth.startswith("Bearer ") else "")


def check_api_key() -> None:
    valid = _settings().api_keys
    if not valid or _is_open(request.path) or request.method == "OPTIONS":
        return
    presented = _presented_key().encode()
    if not any(hmac.compare_digest(presented, key.encode()) for key in valid):
        raise ServiceError(
            ErrorCode.UNAUTHORIZED,
            "This service needs an API key: send it in the X-API-Key header.",
            {"header": "X-API-Key"},
        )


def check_rate_limit() -> None:
    """Fixed one-minute window per client address, counted in Redis so all API processes share it."""
    limit = _settings().rate_limit_per_minute
    if not limit or _is_open(request.path) or request.method == "OPTIONS":
        return
    now = time.time()
    window = int(now // WINDOW_S)
    key = keys.rate_limit(client_address(), window)
    pipe = current_app.extensions["store"].queue.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, WINDOW_S + 1)
    count, _ = pipe.execute()
    if count > limit:
        raise ServiceError(
            ErrorCode.RATE_LIMITED,
            f"Too many requests: the limit is {limit} per minute per client.",
            {"limit_per_minute": limit},
            retry_after_s=max(1, int((window + 1) * WINDOW_S - now)),
        )


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _cors_preflight() -> Response | None:
    if request.method == "OPTIONS" and request.headers.get("Origin") in _settings().cors_origins:
        return Response(status=204)
    return None


def _drain_unread_body() -> None:
    """Read what is left of a request we answered early (401, 429, ...).

    Closing a connection with unread upload bytes makes the kernel reset it, and
    nginx then reports 502 instead of our answer.
    """
    stream = request.stream
    if isinstance(stream, LimitedStream) and not stream.is_exhausted:
        stream.exhaust()


def _finish(response: Response) -> Response:
    _drain_unread_body()
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.headers["X-Content-Type-Options"] = "nosniff"
    origin = request.headers.get("Origin")
    if origin and origin in _settings().cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-API-Key, X-Request-ID"
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Retry-After"
        response.vary.add("Origin")
    return response


def init_app(app: Flask) -> None:
    app.config["TRUSTED_NETWORKS"] = trusted_networks(app.config["SETTINGS"].trusted_proxies)
    app.before_request(_assign_request_id)
    app.before_request(_cors_preflight)
    app.before_request(check_rate_limit)  # first, so guessing API keys is rate-limited too
    app.before_request(check_api_key)
    app.after_request(_finish)

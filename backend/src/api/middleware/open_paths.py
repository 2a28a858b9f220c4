"""Probes and docs stay reachable without a key and outside the rate limit."""

from __future__ import annotations

from flask import request

OPEN_PATHS = ("/api/v1/health", "/api/v1/ready", "/api/v1/openapi.json", "/api/v1/docs", "/metrics")


def exempt() -> bool:
    """True for probes, docs and CORS preflights."""
    path = request.path
    return request.method == "OPTIONS" or any(path == p or path.startswith(p + "/") for p in OPEN_PATHS)

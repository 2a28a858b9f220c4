"""CORS for the origins in CORS_ORIGINS only (none by default)."""

from __future__ import annotations

from flask import Response, request

from api.services import services


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    return origin if origin and origin in services().settings.cors_origins else None


def answer_preflight() -> Response | None:
    if request.method == "OPTIONS" and _allowed_origin():
        return Response(status=204)
    return None


def add_headers(response: Response) -> None:
    origin = _allowed_origin()
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-API-Key, X-Request-ID"
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Retry-After"
        response.vary.add("Origin")

"""Optional API keys (API_KEYS): X-API-Key or Authorization: Bearer, compared in constant time."""

from __future__ import annotations

import hmac

from flask import request

from api.middleware.open_paths import exempt
from api.services import services
from imgclf_contract.errors import ErrorCode, ServiceError


def _presented_key() -> str:
    auth = request.headers.get("Authorization", "")
    return request.headers.get("X-API-Key") or (auth[7:] if auth.startswith("Bearer ") else "")


def check() -> None:
    valid = services().settings.api_keys
    if not valid or exempt():
        return
    presented = _presented_key().encode()
    if not any(hmac.compare_digest(presented, key.encode()) for key in valid):
        raise ServiceError(
            ErrorCode.UNAUTHORIZED,
            "This service needs an API key: send it in the X-API-Key header.",
            {"header": "X-API-Key"},
        )

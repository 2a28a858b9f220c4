"""The per-client rate limit (RATE_LIMIT_PER_MINUTE): a fixed one-minute window per client
address, counted in Redis so all API processes share it."""

from __future__ import annotations

import time

from flask import request

from api.middleware.client_address import client_address
from api.middleware.open_paths import exempt
from api.services import services
from api.store.rate_limits import WINDOW_S
from imgclf_contract.errors import ErrorCode, ServiceError

FEEDBACK_WRITES = ("feedback.create_feedback", "compat.feedback")  # endpoints that store a record


def check() -> None:
    s = services()
    if exempt():
        return
    _enforce(s.settings.rate_limit_per_minute, "requests", "requests")
    if request.endpoint in FEEDBACK_WRITES:
        _enforce(s.settings.feedback_rate_limit_per_minute, "feedback", "feedback posts")


def _enforce(limit: int, scope: str, what: str) -> None:
    """429 once this client is over ``limit`` in the current minute (0: no limit)."""
    if not limit:
        return
    now = time.time()
    window = int(now // WINDOW_S)
    if services().rate_limits.count(client_address(), window, scope) > limit:
        raise ServiceError(
            ErrorCode.RATE_LIMITED,
            f"Too many {what}: the limit is {limit} per minute per client.",
            {"limit_per_minute": limit, "scope": scope},
            retry_after_s=max(1, int((window + 1) * WINDOW_S - now)),
        )

"""The per-client rate limit (RATE_LIMIT_PER_MINUTE): a fixed one-minute window per client
address, counted in Redis so all API processes share it."""

from __future__ import annotations

import time

from api.middleware.client_address import client_address
from api.middleware.open_paths import exempt
from api.services import services
from api.store.rate_limits import WINDOW_S
from imgclf_contract.errors import ErrorCode, ServiceError


def check() -> None:
    s = services()
    limit = s.settings.rate_limit_per_minute
    if not limit or exempt():
        return
    now = time.time()
    window = int(now // WINDOW_S)
    if s.rate_limits.count(client_address(), window) > limit:
        raise ServiceError(
            ErrorCode.RATE_LIMITED,
            f"Too many requests: the limit is {limit} per minute per client.",
            {"limit_per_minute": limit},
            retry_after_s=max(1, int((window + 1) * WINDOW_S - now)),
        )

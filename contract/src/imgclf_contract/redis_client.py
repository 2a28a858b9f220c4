"""The one way any process here opens its Redis connection."""

from __future__ import annotations

import redis

from imgclf_contract.settings import SharedSettings


def connect(settings: SharedSettings, **options: float | bool) -> redis.Redis:
    """A client for REDIS_URL with REDIS_PASSWORD; ``options`` are redis-py's timeouts and health checks."""
    return redis.Redis.from_url(settings.redis_url, password=settings.redis_password or None, **options)

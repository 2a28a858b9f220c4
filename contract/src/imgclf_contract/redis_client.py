"""The one way any process here opens its Redis connection."""

from __future__ import annotations

import redis

from imgclf_contract.settings import SharedSettings


def connect(settings: SharedSettings, url: str | None = None, **options: float | bool) -> redis.Redis:
    """A client for ``url`` (default REDIS_URL, the store; or ``settings.queue_url``/``cache_url``)
    with REDIS_PASSWORD; ``options`` are redis-py's timeouts and health checks."""
    return redis.Redis.from_url(url or settings.redis_url, password=settings.redis_password or None, **options)

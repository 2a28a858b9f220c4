"""Per-client request counters in fixed one-minute windows, shared by every API process."""

from __future__ import annotations

import redis

from imgclf_contract import keys

WINDOW_S = 60


class RateLimits:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def count(self, client_address: str, window: int, scope: str = "requests") -> int:
        """Count one request of this client in this window; returns the window's count so far."""
        key = keys.rate_limit(client_address, window, scope)
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, WINDOW_S + 1)
        count, _ = pipe.execute()
        return int(count)

"""Which workers are live: the one rule every reader of the heartbeats applies.

A worker stamps its id in ``keys.WORKERS_ZSET`` with Redis's clock (ms) and
rewrites its info record (``keys.worker_info``) every HEARTBEAT_INTERVAL_S; it is
live while that stamp is younger than HEARTBEAT_STALE_S. Redis's clock is read
alike from every host, so machines with skewed clocks agree.
"""

from __future__ import annotations

import json

import redis

from imgclf_contract import keys

# The same rule inside a Lua script: with KEYS[2] = keys.WORKERS_ZSET, or a model version's
# keys.serving set, and ARGV[1] = the staleness in ms, it leaves the number of live workers in
# the local variable `live`.
LIVE_COUNT_LUA = """
local now = redis.call('TIME')
local live = redis.call('ZCOUNT', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[1]), '+inf')
"""


def redis_now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def oldest_live_stamp_ms(client: redis.Redis, stale_s: float) -> int:
    """The rule itself: a stamp (in WORKERS_ZSET or a model's ``keys.serving`` set) at or after this is live."""
    return redis_now_ms(client) - int(stale_s * 1000)


def live_workers(client: redis.Redis, stale_s: float) -> list[dict]:
    """Info records of workers whose last heartbeat (Redis clock) is younger than stale_s."""
    ids = client.zrangebyscore(keys.WORKERS_ZSET, oldest_live_stamp_ms(client, stale_s), "+inf")
    if not ids:
        return []
    records = client.mget([keys.worker_info(_id.decode()) for _id in ids])
    return [json.loads(r) for r in records if r]

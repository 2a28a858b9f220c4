"""The one liveness rule, read both ways: by Python (live_workers) and inside the queue's Lua
scripts (LIVE_COUNT_LUA), against a real Redis and its clock."""

from __future__ import annotations

import json

from imgclf_contract import keys
from imgclf_contract.liveness import LIVE_COUNT_LUA, live_workers, redis_now_ms

STALE_S = 5.0
STREAM = keys.jobs("efficientnet_lite0", "1")  # KEYS[1] of the queue's scripts; the rule reads KEYS[2]
COUNT_LIVE = LIVE_COUNT_LUA + "return live"


def stamp(client, worker_id: str, age_s: float) -> None:
    """A heartbeat as a worker writes it, made age_s ago by Redis's clock."""
    at_ms = redis_now_ms(client) - int(age_s * 1000)
    client.zadd(keys.WORKERS_ZSET, {worker_id: at_ms})
    client.set(keys.worker_info(worker_id), json.dumps({"worker_id": worker_id, "at_ms": at_ms}))


def test_python_and_lua_agree_on_who_is_live(redis_db):
    stamp(redis_db, "fresh", age_s=0.0)
    stamp(redis_db, "nearly-stale", age_s=STALE_S - 1)
    stamp(redis_db, "stale", age_s=STALE_S + 1)
    live = {record["worker_id"] for record in live_workers(redis_db, STALE_S)}
    assert live == {"fresh", "nearly-stale"}
    count = redis_db.register_script(COUNT_LIVE)(keys=[STREAM, keys.WORKERS_ZSET], args=[int(STALE_S * 1000)])
    assert count == len(live)


def test_no_heartbeat_means_no_live_worker(redis_db):
    assert live_workers(redis_db, STALE_S) == []
    assert redis_db.register_script(COUNT_LIVE)(keys=[STREAM, keys.WORKERS_ZSET], args=[5000]) == 0

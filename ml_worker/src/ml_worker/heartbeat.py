"""The worker's heartbeat thread: liveness for /ready and the worker's figures for /metrics.

Every HEARTBEAT_INTERVAL_S the worker stamps its id in a sorted set (score =
Redis time), and in one sorted set per model version it serves (``keys.serving``,
what admission reads), and rewrites its info record (models, backend, pid and
cumulative counters) with a TTL; readers judge it by ``imgclf_contract.liveness``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable

import redis

from imgclf_contract import keys
from imgclf_contract.liveness import redis_now_ms
from ml_worker.stats import WorkerStats, rss_bytes

log = logging.getLogger("ml_worker.heartbeat")


class Heartbeat(threading.Thread):
    def __init__(
        self,
        client: redis.Redis,
        worker_id: str,
        info: dict,
        stats: WorkerStats,
        interval_s: float,
        stale_s: float,
        stopping: threading.Event,
        loop_is_live: Callable[[], bool],
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.client = client
        self.worker_id = worker_id
        self.info = {**info, "worker_id": worker_id, "pid": os.getpid(), "host": socket.gethostname()}
        self.stats = stats
        self.interval_s = interval_s
        self.stale_s = stale_s
        self._stop_event = stopping
        self._loop_is_live = loop_is_live
        self._serving = [keys.serving(m["name"], m["version"]) for m in info.get("models", [])]

    def beat(self) -> None:
        """Stamped with Redis's clock, which every host reads alike (no skew between machines)."""
        record = {
            **self.info,
            "at_ms": redis_now_ms(self.client),
            "rss_bytes": rss_bytes(),
            "stats": self.stats.snapshot(),
        }
        pipe = self.client.pipeline(transaction=False)
        for zset in (keys.WORKERS_ZSET, *self._serving):
            pipe.zadd(zset, {self.worker_id: record["at_ms"]})
            pipe.zremrangebyscore(zset, 0, record["at_ms"] - int(self.stale_s * 4000))
        pipe.set(keys.worker_info(self.worker_id), json.dumps(record), ex=max(1, int(self.stale_s * 2)))
        pipe.execute()

    def run(self) -> None:
        """Beat until the worker starts stopping, then withdraw at once.

        Withdrawing before the last batch is finished makes the API answer 503
        straight away instead of queueing jobs that nobody would read.
        """
        while not self._stop_event.is_set():
            try:
                if self._loop_is_live():
                    self.beat()
                else:  # a hung loop takes no jobs: let the record go stale so the API stops sending them
                    log.error("worker loop is stuck; not vouching for it", extra={"worker_id": self.worker_id})
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            self._stop_event.wait(self.interval_s)
        self.withdraw()

    def withdraw(self) -> None:
        try:
            for zset in (keys.WORKERS_ZSET, *self._serving):
                self.client.zrem(zset, self.worker_id)
            self.client.delete(keys.worker_info(self.worker_id))
        except redis.RedisError as exc:
            log.warning("could not withdraw heartbeat: %s", exc)

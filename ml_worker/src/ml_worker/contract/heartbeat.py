"""Worker heartbeats: liveness for /ready and the worker's figures for /metrics.

Every HEARTBEAT_INTERVAL_S the worker stamps its id in a sorted set (score =
time), and in one sorted set per model version it serves (``keys.serving``,
what admission reads), and rewrites its info record (models, backend, pid and
cumulative counters) with a TTL; the API treats a worker as live while its
stamp is younger than HEARTBEAT_STALE_S.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import redis

from ml_worker.contract import keys

log = logging.getLogger("ml_worker.heartbeat")

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32)
INFERENCE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _histogram(buckets: tuple[float, ...]) -> dict:
    return {"buckets": {str(b): 0 for b in buckets}, "sum": 0.0, "count": 0}


def _observe(hist: dict, value: float) -> None:
    for bound in hist["buckets"]:
        if value <= float(bound):
            hist["buckets"][bound] += 1
    hist["sum"] += value
    hist["count"] += 1


@dataclass
class WorkerStats:
    """Cumulative counters; the API exports them as Prometheus counters/histograms."""

    jobs_total: int = 0
    batches_total: int = 0
    expired_total: int = 0
    claimed_total: int = 0
    failed_total: int = 0
    batch_size: dict = field(default_factory=lambda: _histogram(BATCH_SIZE_BUCKETS))
    inference_seconds: dict = field(default_factory=lambda: _histogram(INFERENCE_BUCKETS_S))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_batch(self, size: int, seconds: float) -> None:
        with self._lock:
            self.jobs_total += size
            self.batches_total += 1
            _observe(self.batch_size, size)
            _observe(self.inference_seconds, seconds)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict:
        with self._lock:
            return json.loads(json.dumps({f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}))


class Heartbeat(threading.Thread):
    def __init__(self, client: redis.Redis, worker_id: str, info: dict, stats: WorkerStats, interval_s: float,
                 stale_s: float, stopping: threading.Event, loop_is_live: Callable[[], bool]) -> None:  # fmt: skip
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
        record = {**self.info, "at_ms": redis_now_ms(self.client), "rss_bytes": _rss_bytes(),
                  "stats": self.stats.snapshot()}  # fmt: skip
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


def redis_now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def live_workers(client: redis.Redis, stale_s: float) -> list[dict]:
    """Info records of workers whose last heartbeat (Redis clock) is younger than stale_s."""
    ids = client.zrangebyscore(keys.WORKERS_ZSET, redis_now_ms(client) - int(stale_s * 1000), "+inf")
    if not ids:
        return []
    records = client.mget([keys.worker_info(_id.decode()) for _id in ids])
    return [json.loads(r) for r in records if r]

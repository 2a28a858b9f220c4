"""The worker's cumulative figures, published in its heartbeat for the API's /metrics."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, fields

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32)
INFERENCE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def rss_bytes() -> int:
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

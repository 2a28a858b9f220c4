"""A burst far above capacity: the excess is refused (429/503 + Retry-After), the
job queue never passes MAX_QUEUE, memory stays flat, nobody waits past the
deadline, and latency is back to normal within seconds after the burst."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
import redis

from testsupport import faults as fl
from testsupport.processes import tree_rss

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_QUEUE = 16
CLIENTS = 150
BURST_S = 4
API_PROCESSES, API_THREADS = 2, 16  # more request threads than queue slots: the queue, not gunicorn, refuses
OVERLOAD_ENV = {
    **fl.FAST_ENV,
    "MAX_QUEUE": str(MAX_QUEUE),
    "API_PROCESSES": str(API_PROCESSES),
    "API_THREADS": str(API_THREADS),
}
# Redis holds at most MAX_QUEUE tensors in the stream plus one arriving on each API connection.
REDIS_HEADROOM = (MAX_QUEUE + API_PROCESSES * API_THREADS) * 224 * 224 * 3  # Lite0's tensors
RSS_FACTOR = 2.5  # after / before: thread arenas and buffers warm up once; a leak would keep growing


class QueueSampler(threading.Thread):
    """XLEN of the job stream every 10 ms until stopped (bounded by max_s)."""

    def __init__(self, client: redis.Redis, max_s: float) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.samples: list[int] = []
        self.deadline = time.monotonic() + max_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            self.samples.append(self.client.xlen(fl.DEFAULT_STREAM))
            time.sleep(0.01)


def _memory(stack) -> dict[str, int]:
    client = stack.redis("queue", socket_timeout=2)
    return {
        "redis": client.info("memory")["used_memory"],
        "api": tree_rss(stack.pid("api")),
        "worker": tree_rss(stack.pid("worker-1")),
    }


def test_burst_above_capacity_is_refused_and_bounded(stack_factory) -> None:
    stack = stack_factory("faults-overload", workers=1, env=OVERLOAD_ENV)
    url = stack.config.url
    normal = fl.p50(url)
    before = _memory(stack)

    sampler = QueueSampler(stack.redis("queue", socket_timeout=2), max_s=BURST_S + fl.CLIENT_TIMEOUT_S)
    sampler.start()
    with fl.Load(url, clients=CLIENTS, max_s=BURST_S, max_requests=CLIENTS * 40) as load:
        time.sleep(BURST_S)
    sampler.stopped.set()
    sampler.join()
    outcomes = load.outcomes
    after_burst = time.monotonic()
    back_to_normal = fl.wait_until(lambda: fl.p50(url, samples=5) <= 2 * normal, timeout_s=5, interval_s=0)
    recovery_s = time.monotonic() - after_burst
    after = _memory(stack)

    refused = [o for o in outcomes if o.status != 200]
    assert any(o.status == 429 for o in refused), "the burst never filled the queue; it is not an overload"
    for outcome in refused:
        fl.assert_error_envelope(outcome, {429, 503})
    assert all(o.correct for o in outcomes if o.status == 200)
    slowest = max(o.elapsed for o in outcomes)
    assert slowest <= fl.PROMPT_S, f"a response took {slowest:.1f} s"
    assert sampler.samples and max(sampler.samples) <= MAX_QUEUE, max(sampler.samples)
    assert fl.wait_until(lambda: fl.stream_drained(sampler.client), timeout_s=fl.PROMPT_S), "queue not drained"
    assert after["redis"] <= before["redis"] + REDIS_HEADROOM, (before, after)
    for process in ("api", "worker"):
        assert after[process] <= before[process] * RSS_FACTOR, (process, before[process], after[process])
    assert back_to_normal, f"p50 not back within 2 x {normal * 1000:.0f} ms after {recovery_s:.1f} s"
    print(
        f"\n{len(outcomes)} requests from {CLIENTS} clients in {BURST_S} s: {len(outcomes) - len(refused)} ok, "
        f"{len(refused)} refused (median {statistics.median(o.elapsed for o in refused) * 1000:.0f} ms), "
        f"slowest {slowest:.2f} s, max XLEN {max(sampler.samples)}, p50 {normal * 1000:.0f} ms before, "
        f"normal again after {recovery_s:.1f} s; memory before {before} after {after}"
    )

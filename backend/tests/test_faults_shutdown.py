"""SIGTERM is a clean stop: a worker answers the batch in its hands, leaves the
consumer group and strands no job; the API (gunicorn master) finishes the
requests in flight before it exits."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from testsupport import faults as fl
from testsupport import slow_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DELAY_MS = 1500  # a batch is held this long, so SIGTERM lands while it is in flight
SLOW_WORKER = {"worker-1": slow_worker.argv(DELAY_MS)}  # worker-1 holds every batch DELAY_MS
NO_STEALING = {"CLAIM_IDLE_MS": "2500"}  # above DELAY_MS: nobody re-claims a batch its worker still holds
EXIT_S = DELAY_MS / 1000 + 3.5  # batch in hand + one blocking read + heartbeat withdrawal, with margin


def test_worker_sigterm_answers_its_batch_and_leaves_the_group(stack_factory) -> None:
    env = {**fl.FAST_ENV, **NO_STEALING}
    stack = stack_factory("faults-sigterm-worker", workers=2, env=env, worker_argv=SLOW_WORKER)
    leaving = stack.worker_id("worker-1")
    client = stack.redis("queue", socket_timeout=2)

    with fl.Load(stack.config.url, clients=2, max_s=20, max_requests=300) as load:
        assert fl.wait_until(lambda: fl.pending_request_ids(client, leaving), timeout_s=10), "worker-1 took no job"
        signalled = time.monotonic()
        stack.signal("worker-1", signal.SIGTERM)
        held = fl.pending_request_ids(client, leaving)
        exited = fl.wait_until(lambda: stack.pid("worker-1") is None, timeout_s=EXIT_S)
        exit_s = time.monotonic() - signalled
        time.sleep(1)  # the other worker carries on alone
    outcomes = load.outcomes

    assert held, "worker-1 finished its batch before the signal; nothing was in flight"
    assert exited, f"worker-1 still running {EXIT_S} s after SIGTERM"
    assert all(o.status == 200 and o.correct for o in outcomes), sorted({(o.status, o.top1) for o in outcomes}, key=str)
    by_id = {o.request_id: o for o in outcomes}
    for request_id in held:
        batch = by_id[request_id].body["batch"]
        assert batch["worker_id"] == leaving and batch["deliveries"] == 1, batch
    assert not fl.pending_request_ids(client, leaving)
    assert leaving not in fl.consumers(client), "worker-1 did not leave the consumer group"
    assert fl.wait_until(lambda: fl.stream_drained(client), timeout_s=fl.PROMPT_S), "orphaned jobs left in the stream"
    assert "worker stopped" in stack.log_path("worker-1").read_text()
    print(f"\nworker-1 answered {len(held)} held job(s) and exited {exit_s:.1f} s after SIGTERM")


def test_api_sigterm_completes_requests_in_flight(stack_factory) -> None:
    env = {**fl.FAST_ENV, **NO_STEALING, "BATCH_WAIT_MS": "300"}  # one slow batch for all requests
    stack = stack_factory("faults-sigterm-api", workers=1, env=env, worker_argv=SLOW_WORKER)
    client = stack.redis("queue", socket_timeout=2)
    in_flight = 4

    with fl.Load(stack.config.url, clients=in_flight, max_s=fl.PROMPT_S, max_requests=in_flight) as load:
        assert fl.wait_until(lambda: fl.pending_request_ids(client, stack.worker_id("worker-1")), timeout_s=10)
        signalled = time.monotonic()
        stack.signal("api", signal.SIGTERM)
    outcomes = load.outcomes
    exited = fl.wait_until(lambda: stack.pid("api") is None, timeout_s=EXIT_S)

    assert len(outcomes) == in_flight
    assert all(o.status == 200 and o.correct for o in outcomes), [(o.status, o.body) for o in outcomes]
    assert all(o.ended > signalled for o in outcomes), "a request finished before the signal: not in flight"
    assert exited, "gunicorn still running after its requests were answered"
    gone = requests.get(f"{stack.config.url}/api/v1/health", timeout=5)
    assert gone.status_code == 502 and gone.json()["error"]["code"] == "bad_gateway"

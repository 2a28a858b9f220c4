"""Worker crashes under steady load: a killed worker's batch is re-claimed and
answered by another; with no worker left, clients get prompt 503/504s and the
service heals by itself once a worker is back."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from testsupport import faults as fl
from testsupport import slow_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DELAY_MS = 1500  # worker-1 holds each batch this long, so the kill lands mid-batch
CLAIM_IDLE_MS = 2500  # above DELAY_MS: the other worker re-claims only what a dead worker held


def _ready_status(url: str) -> int | None:
    try:
        return requests.get(f"{url}/api/v1/ready", timeout=2).status_code
    except requests.RequestException:
        return None


def test_jobs_of_a_worker_killed_mid_batch_are_answered_by_the_other(stack_factory) -> None:
    env = {**fl.FAST_ENV, "CLAIM_IDLE_MS": str(CLAIM_IDLE_MS)}
    slow = {"worker-1": slow_worker.argv(DELAY_MS)}
    stack = stack_factory("faults-kill-mid-batch", workers=2, env=env, worker_argv=slow)
    victim, survivor = (stack.worker_id(f"worker-{i}") for i in (1, 2))
    client = stack.redis("queue", socket_timeout=2)

    with fl.Load(stack.config.url, clients=4, max_s=20, max_requests=500) as load:
        assert fl.wait_until(lambda: fl.pending_request_ids(client, victim), timeout_s=10), "worker-1 took no job"
        stack.signal("worker-1", signal.SIGKILL)
        held = fl.pending_request_ids(client, victim)  # still unacknowledged: the kill landed mid-batch
        time.sleep(CLAIM_IDLE_MS / 1000 + 2)  # re-claim, then steady load on the survivor
    outcomes = load.outcomes

    assert held, "worker-1 finished its batch before the kill; nothing was mid-batch"
    assert all(o.status == 200 for o in outcomes), sorted({(o.status, o.error_code) for o in outcomes}, key=str)
    assert all(o.correct for o in outcomes), [(o.photo.file, o.top1) for o in outcomes if not o.correct]
    assert max(o.elapsed for o in outcomes) <= fl.TIMEOUT_S
    by_id = {o.request_id: o for o in outcomes}
    assert held <= by_id.keys(), "a job the killed worker held got no answer"
    for request_id in held:
        batch = by_id[request_id].body["batch"]
        assert batch["worker_id"] == survivor and batch["deliveries"] >= 2, batch
    assert not fl.pending_request_ids(client, victim), "jobs are still stranded with the dead worker"


def test_sole_worker_outage_fails_fast_and_heals(stack_factory) -> None:
    stack = stack_factory("faults-worker-outage", workers=1, env=fl.FAST_ENV)
    url = stack.config.url
    stale_s = float(fl.FAST_ENV["HEARTBEAT_STALE_S"])

    with fl.Load(url, clients=3, max_s=45, max_requests=3000) as load:
        time.sleep(1)
        stack.signal("worker-1", signal.SIGKILL)
        killed = time.monotonic()
        assert fl.wait_until(lambda: _ready_status(url) == 503, timeout_s=stale_s + 2), "/ready still says ready"
        assert fl.wait_until(lambda: any(o.status == 503 and o.started > killed for o in load.outcomes), fl.PROMPT_S)
        healed = fl.restart_and_wait_healed(stack, "worker-1", load)
        time.sleep(2)  # some steady traffic after healing
    outcomes = load.outcomes

    assert healed, "no request succeeded after the worker came back"
    assert _ready_status(url) == 200
    fl.assert_outage_handled(outcomes, healed)

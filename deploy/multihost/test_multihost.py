"""The service spread over separate hosts (network namespaces, see conftest.py): both
worker hosts share the load, a custom model trained through the API (by the trainer on its
own host) is served by workers on both worker hosts, a worker host killed under load loses
no accepted request, a worker host joining later gets jobs, a partitioned worker host heals,
and an API cut off from Redis answers 503 envelopes and recovers. The tests run in this
order, on one cluster.
"""

from __future__ import annotations

import concurrent.futures
import signal
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests

from deploy.multihost import hosts as hostlib
from deploy.multihost.cluster import API_PORT, LATE_WORKER_HOST, ROOT, WORKER_HOSTS, Cluster
from imgclf_contract.liveness import live_workers
from loadtest import shapes
from scripts.stack import REDIS_ROLES
from testsupport import faults as fl
from testsupport.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("client_host")]

WORKER_IDS = {host: f"{service}@8080" for host, (_octet, service) in WORKER_HOSTS.items()}
CLAIM_IDLE_S = int(fl.FAST_ENV["CLAIM_IDLE_MS"]) / 1000
OUTAGE_BOUND_S = fl.TIMEOUT_S + 4  # the API's Redis socket timeout (REQUEST_TIMEOUT_S + 2) and a margin
CUSTOM_MODEL, CUSTOM_LABELS, PER_LABEL = "shapes_multihost", ("circle", "stripes", "checks"), 8
TRAINING_TIMEOUT_S, EXPORT_TIMEOUT_S = 120, 120


def _run_load(url: str, clients: int, requests_total: int, max_s: float = 60) -> list[fl.Outcome]:
    with fl.Load(url, clients=clients, max_s=max_s, max_requests=requests_total) as load:
        wait_until(lambda: len(load.outcomes) >= requests_total, max_s, interval_s=0.1)
    return load.outcomes


def _worker_of(outcome: fl.Outcome) -> str:
    return outcome.body["batch"]["worker_id"]


def _assert_all_answered(outcomes: list[fl.Outcome]) -> None:
    assert outcomes, "no request was sent"
    assert all(o.status == 200 for o in outcomes), sorted({(o.status, o.error_code) for o in outcomes}, key=str)
    assert all(o.correct for o in outcomes), [(o.photo.file, o.top1) for o in outcomes if not o.correct]
    assert max(o.elapsed for o in outcomes) <= fl.TIMEOUT_S, "a request waited past REQUEST_TIMEOUT_S"


def _redis_counters(cluster: Cluster) -> tuple[float, int]:
    """CPU seconds the redis-servers (store, queue, cache) have used, and the bytes they received and sent."""
    cpu, traffic = 0.0, 0
    for role, (service, _offset, _conf) in REDIS_ROLES.items():
        times = psutil.Process(cluster.pid("redis", service)).cpu_times()
        stats = cluster.redis(role).info("stats")
        cpu += times.user + times.system
        traffic += stats["total_net_input_bytes"] + stats["total_net_output_bytes"]
    return cpu, traffic


def test_each_host_writes_only_its_own_state_directory(cluster: Cluster) -> None:
    """No shared writable directory: the checkout, home, other hosts' state and /var/tmp are
    read-only on every host; /tmp is a private tmpfs of each service."""
    services = [h for h in cluster.network.hosts.values() if h.name != "client"]
    for host in services:
        assert host.run(ROOT, ["hostname"]).stdout.strip() == host.name
        own = host.run(ROOT, ["sh", "-c", f"touch {host.state_dir}/probe /tmp/{host.name}"])
        assert own.returncode == 0, own.stderr
        elsewhere = [ROOT, Path.home(), Path("/var/tmp"), *(h.state_dir for h in services if h is not host)]
        for other in elsewhere:
            denied = host.run(ROOT, ["touch", str(other / "probe")])
            assert denied.returncode != 0 and "Read-only" in denied.stderr, (host.name, other, denied)


def test_services_listen_on_their_host_address_not_loopback(cluster: Cluster) -> None:
    """Every hop crosses the bridge: nothing answers on a host's loopback."""
    web = cluster.host("web")
    assert requests.get(f"{cluster.url}/api/v1/ready", timeout=5).status_code == 200
    listening = web.run(ROOT, ["ss", "-Hltn"]).stdout
    assert f"{web.address}:8080" in listening and f"{web.address}:{API_PORT}" in listening, listening
    assert "127.0.0.1:" not in listening, listening


def test_jobs_from_concurrent_requests_are_answered_by_both_worker_hosts(cluster: Cluster, figures: dict) -> None:
    live = live_workers(cluster.redis(), stale_s=2)
    assert {w["host"] for w in live} == set(WORKER_HOSTS), live
    cpu_before, bytes_before = _redis_counters(cluster)
    outcomes = _run_load(cluster.url, clients=8, requests_total=240)
    cpu_after, bytes_after = _redis_counters(cluster)

    _assert_all_answered(outcomes)
    by_worker = {wid: [o for o in outcomes if _worker_of(o) == wid] for wid in WORKER_IDS.values()}
    assert all(by_worker.values()), {wid: len(done) for wid, done in by_worker.items()}

    span = max(o.ended for o in outcomes) - min(o.started for o in outcomes)
    capacity = [
        o.body["batch"]["size"] / (o.body["timings_ms"]["inference"] / 1000)
        for o in outcomes
        if o.body["timings_ms"]["inference"] > 0
    ]
    figures["two worker hosts, 8 clients"] = (
        f"{len(outcomes)} images in {span:.1f} s = {len(outcomes) / span:.1f} images/s, p50 "
        f"{statistics.median(o.elapsed for o in outcomes) * 1000:.0f} ms; split "
        + ", ".join(f"{wid} {len(done)}" for wid, done in by_worker.items())
    )
    figures["worker inference capacity (batch size / inference time, median)"] = (
        f"{statistics.median(capacity):.0f} images/s per worker"
    )
    figures["redis per image"] = (
        f"{(cpu_after - cpu_before) / len(outcomes) * 1000:.2f} ms CPU, "
        f"{(bytes_after - bytes_before) / len(outcomes) / 1024:.0f} KiB network in+out"
    )


class PeakRss(threading.Thread):
    """Samples the RSS of a process and its children (the trainer and its export) every 0.1 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="peak-rss", daemon=True)
        self.process, self.peak, self.done = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            try:
                family = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in family if p.is_running()))
            except psutil.NoSuchProcess:
                continue

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def _fill_dataset(url: str) -> None:
    """On float Lite0 (not the default int8 Lite0): the trainer host builds an export only for a float base."""
    dataset = {"name": CUSTOM_MODEL, "base_model": "efficientnet_lite0"}
    requests.post(f"{url}/api/v1/datasets", json=dataset, timeout=10).raise_for_status()
    rng = np.random.default_rng(7)
    for label in CUSTOM_LABELS:
        for _ in range(PER_LABEL):
            files = {"image": ("x.png", shapes.image(label, rng))}
            answer = requests.post(
                f"{url}/api/v1/datasets/{CUSTOM_MODEL}/images", files=files, data={"label": label}, timeout=10
            )
            assert answer.status_code == 201, answer.text


def _train(url: str) -> dict:
    started = requests.post(f"{url}/api/v1/trainings", json={"dataset": CUSTOM_MODEL}, timeout=10)
    assert started.status_code == 202, started.text
    state_url = f"{url}/api/v1/trainings/{started.json()['id']}"
    state = wait_until(
        lambda: (s := requests.get(state_url, timeout=10).json())["status"] in ("succeeded", "failed") and s,
        TRAINING_TIMEOUT_S,
        interval_s=0.2,
    )
    assert state and state["status"] == "succeeded", state
    return state


def _predict_custom(url: str, data: bytes) -> dict:
    answer = requests.post(
        f"{url}/api/v1/predictions",
        files={"image": ("x.png", data)},
        data={"model": CUSTOM_MODEL},
        timeout=fl.TIMEOUT_S + 5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_custom_model_trained_through_the_api_is_served_by_both_worker_hosts(cluster: Cluster, figures: dict) -> None:
    """Dataset uploaded and trained through nginx from the client host; the trainer runs on its own host
    and publishes into Redis; fresh images of the model then go to the workers on both worker hosts."""
    assert {w["host"] for w in live_workers(cluster.redis(), stale_s=2)} == set(WORKER_HOSTS)
    sampler = PeakRss(cluster.pid("trainer", "trainer"))
    sampler.start()
    try:
        _fill_dataset(cluster.url)
        began = time.monotonic()
        state = _train(cluster.url)
        trained_s = time.monotonic() - began
        rng = np.random.default_rng(99)  # images it never saw
        jobs = [(label, shapes.image(label, rng)) for label in CUSTOM_LABELS for _ in range(40)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda job: _predict_custom(cluster.url, job[1]), jobs))
        export_url = f"{cluster.url}/api/v1/models/{CUSTOM_MODEL}/export"
        exported = wait_until(lambda: requests.get(export_url, timeout=30).status_code == 200, EXPORT_TIMEOUT_S)
    finally:
        peak = sampler.stop()

    assert all(b["model"]["name"] == CUSTOM_MODEL and b["model"]["version"] == state["version"] for b in bodies)
    assert {p["label"] for b in bodies for p in b["predictions"]} <= set(CUSTOM_LABELS)
    right = sum(b["predictions"][0]["label"] == label for (label, _data), b in zip(jobs, bodies, strict=True))
    assert right >= 0.8 * len(jobs), f"{right}/{len(jobs)} fresh images right"
    by_host = {host: sum(b["batch"]["worker_id"] == wid for b in bodies) for host, wid in WORKER_IDS.items()}
    assert all(by_host.values()), by_host
    assert exported, "the trainer host never built the export"
    figures["custom model (trainer on its own host)"] = (
        f"{len(CUSTOM_LABELS)} x {PER_LABEL} images trained in {trained_s:.1f} s, hold-out accuracy "
        f"{state.get('holdout_accuracy')}; {right}/{len(jobs)} fresh images right; split "
        + ", ".join(f"{h} {n}" for h, n in by_host.items())
        + f"; trainer + export peak RSS {peak / 2**20:.0f} MiB"
    )


def _freeze_while_holding_jobs(cluster: Cluster, host_name: str, worker_id: str) -> set[str]:
    """Stop the worker (SIGSTOP) at a moment it holds unacknowledged jobs; their request ids."""
    client = cluster.redis()
    service = WORKER_HOSTS[host_name][1]
    for _ in range(100):
        cluster.stacks[host_name].signal(service, signal.SIGSTOP)
        if held := fl.pending_request_ids(client, worker_id):
            return held
        cluster.stacks[host_name].signal(service, signal.SIGCONT)
        time.sleep(0.05)
    return set()


def test_killing_a_worker_host_under_load_loses_no_accepted_request(cluster: Cluster, figures: dict) -> None:
    victim, survivor = "worker-a", "worker-b"
    with fl.Load(cluster.url, clients=6, max_s=30, max_requests=600) as load:
        time.sleep(1)
        held = _freeze_while_holding_jobs(cluster, victim, WORKER_IDS[victim])
        killed_pids = cluster.host(victim).kill_all()  # kill -9 of everything on that host, mid-batch
        killed = time.monotonic()
        time.sleep(CLAIM_IDLE_S + 3)  # re-claim, then steady load on the survivor
    outcomes = load.outcomes

    assert held, "worker-a never held a job: the kill could not land mid-batch"
    assert killed_pids and not hostlib.netns_pids(cluster.host(victim).netns), "a process survived on worker-a"
    _assert_all_answered(outcomes)
    by_id = {o.request_id: o for o in outcomes}
    assert held <= by_id.keys(), "a job the killed host held got no answer"
    for request_id in held:
        batch = by_id[request_id].body["batch"]
        assert batch["worker_id"] == WORKER_IDS[survivor] and batch["deliveries"] >= 2, batch
    assert not fl.pending_request_ids(cluster.redis(), WORKER_IDS[victim])
    late = max(by_id[r].ended for r in held) - killed
    assert late <= CLAIM_IDLE_S + 2, f"held jobs answered {late:.1f} s after the kill: re-claim too slow"
    figures["worker host killed (kill -9, 6 clients)"] = (
        f"{len(held)} held jobs re-claimed and answered within {late:.2f} s of the kill "
        f"(CLAIM_IDLE_MS {fl.FAST_ENV['CLAIM_IDLE_MS']}); {len(outcomes)} requests, all 200"
    )


def test_a_worker_host_joining_later_gets_jobs_without_restarts(cluster: Cluster, figures: dict) -> None:
    name, octet, service = LATE_WORKER_HOST
    before = {s: cluster.pid(h, s) for h, s in (("redis", "redis"), ("web", "api"), ("web", "nginx"))}
    with fl.Load(cluster.url, clients=6, max_s=40, max_requests=800) as load:
        time.sleep(1)
        started = time.monotonic()
        cluster.add_worker_host(name, octet, service)
        ready = time.monotonic()
        joined = wait_until(
            lambda: min(
                (o.ended for o in load.outcomes if o.status == 200 and _worker_of(o) == f"{service}@8080"), default=0
            ),
            15,
        )
        time.sleep(1)
    outcomes = load.outcomes

    assert joined, f"{service} on the new host answered no job"
    _assert_all_answered(outcomes)
    assert {s: cluster.pid(h, s) for h, s in (("redis", "redis"), ("web", "api"), ("web", "nginx"))} == before
    figures["worker host joining"] = (
        f"ready {ready - started:.1f} s after start (namespace, link, model load), "
        f"first answer {joined - ready:.2f} s after ready"
    )


def test_a_partitioned_worker_host_is_bypassed_and_rejoins(cluster: Cluster, figures: dict) -> None:
    """Cut worker-b's cable (the process lives on): worker-c takes over; the link returns, worker-b serves again."""
    partitioned = cluster.host("worker-b")
    worker_b = WORKER_IDS["worker-b"]
    with fl.Load(cluster.url, clients=4, max_s=60, max_requests=3000) as load:
        time.sleep(1)
        cluster.network.set_link(partitioned, up=False)
        cut = time.monotonic()
        time.sleep(CLAIM_IDLE_S + 3)
        cluster.network.set_link(partitioned, up=True)
        restored = time.monotonic()
        back = wait_until(
            lambda: min(
                (
                    o.ended
                    for o in load.outcomes
                    if o.started > restored and o.status == 200 and _worker_of(o) == worker_b
                ),
                default=0,
            ),
            30,
        )
    outcomes = load.outcomes

    assert cluster.pid("worker-b", "worker-2"), "the partitioned worker should ride out the cut, not die"
    _assert_all_answered(outcomes)
    during = [o for o in outcomes if o.started > cut + CLAIM_IDLE_S + 1 and o.ended < restored]
    assert during and all(_worker_of(o) != worker_b for o in during)
    assert back, "worker-b answered nothing after its link came back"
    figures["worker host partitioned for 4 s"] = f"no request lost; it served again {back - restored:.1f} s after"


def test_api_cut_from_redis_answers_503_then_recovers(cluster: Cluster, figures: dict) -> None:
    web, redis_host = cluster.host("web"), cluster.host("redis")
    with fl.Load(cluster.url, clients=3, max_s=60, max_requests=3000) as load:
        time.sleep(1)
        cluster.network.set_route(web, redis_host, reachable=False)
        cut = time.monotonic()
        first_503 = wait_until(
            lambda: min((o.ended for o in load.outcomes if o.status == 503 and o.started > cut), default=0),
            OUTAGE_BOUND_S + 2,
        )
        time.sleep(2)  # a real outage, not a blip
        cluster.network.set_route(web, redis_host, reachable=True)
        restored = time.monotonic()
        healed = wait_until(
            lambda: min((o.started for o in load.outcomes if o.status == 200 and o.started > restored), default=0), 20
        )
        time.sleep(2)
    outcomes = load.outcomes

    assert first_503, "no 503 while the API could not reach Redis"
    assert healed, "no request succeeded after the path to Redis came back"
    assert max(o.elapsed for o in outcomes) <= OUTAGE_BOUND_S, "a request hung past the API's Redis timeout"
    for outcome in outcomes:
        if outcome.status != 200:
            fl.assert_error_envelope(outcome, {503, 504})
    assert all(o.correct for o in outcomes if o.status == 200)
    during = [o for o in outcomes if o.started > cut and o.ended < restored]
    assert during and all(o.status == 503 for o in during if o.started > first_503), "200s during the cut?"
    after = [o for o in outcomes if o.started >= healed]
    assert after and all(o.status == 200 for o in after)
    figures["API cut from Redis"] = (
        f"first 503 {first_503 - cut:.2f} s after the cut ({sum(o.status == 503 for o in outcomes)} 503s); "
        f"first success {healed - restored:.2f} s after the path returned"
    )

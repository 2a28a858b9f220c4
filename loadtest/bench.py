"""End-to-end benchmark (``make bench``): the full stack against its in-process limit.

Starts its own stack (result cache off), then in one run measures: the same
photos through decode + preprocessing + LiteRT in this process (the limit);
closed-loop load from a low-overhead generator through nginx -> API -> Redis ->
worker at several concurrencies; where the time goes (the responses'
timings_ms, /metrics and each service's CPU); the ordinary client of issue #15
(threads + requests on six ImageNet photos, ``loadtest/ordinary.py``) after the
float Lite0 reference loop; recovery after a burst; the bulk CLI against
adjacent closed loops; every service's peak RSS; then, with the stack down, the
BentoML peer in the same harness (``loadtest/peers/``); and the targets table
(``loadtest/targets.py``). ``--smoke`` (or BENCH_SMOKE=1) runs a seconds-long
version for CI (without the peer). Prints tables and writes
``loadtest/results/bench-<timestamp>.json`` plus ``latest.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from api.settings import ApiSettings
from imgclf_contract.preprocess import preprocess
from loadtest import images, ordinary, targets
from loadtest.figures import (
    Sample,
    batch_figures,
    cpu_seconds_of,
    latency_summary,
    peak_rss_mb,
    percentile,
    print_table,
    process_tree,
    tile,
    write_results,
)
from loadtest.peers import bentoml_peer
from ml_worker import artifacts
from ml_worker.backends import load_backend
from ml_worker.settings import WorkerSettings
from scripts.ports import free_base_port
from scripts.stack import Stack, StackConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
PATH = "/api/v1/predictions"
STACK_ENV = {"CACHE_TTL_S": "0", "RATE_LIMIT_PER_MINUTE": "0", "BACKEND": "litert"}
RECOVERY_WINDOW = 10
RECOVERY_FACTOR = 1.2


@dataclass(frozen=True)
class Plan:
    """How long and how hard each stage runs (the full run or the CI smoke run); env vars override."""

    smoke: bool
    duration_s: float  # per level of the low-overhead generator
    levels: tuple[int, ...]
    image_count: int
    in_process_s: float
    burst_concurrency: int
    burst_s: float
    recovery_timeout_s: float
    cli_images: int
    ordinary_s: float  # per level of the ordinary client
    ordinary_levels: tuple[int, ...]
    peer_levels: tuple[int, ...]
    loop_s: float  # the reference loop before each ordinary-client stage
    peers: bool
    peer_start_timeout_s: float

    @classmethod
    def make(cls, smoke: bool) -> Plan:
        env = os.environ
        if smoke:
            low = (float(env.get("BENCH_DURATION_S", "2")), (1, 4, 16, 32), 8, 1.0, 50, 2.0, 20.0, 8)
            ordinary = (float(env.get("BENCH_ORDINARY_S", "1.5")), (1, 8), (1, 8), 0.5)
        else:
            low = (float(env.get("BENCH_DURATION_S", "10")), (1, 4, 16, 32), 24, 6.0, 200, 5.0, 60.0, 384)
            ordinary = (float(env.get("BENCH_ORDINARY_S", "12")), (1, 8, 16, 32), (1, 8, 16), 8.0)
        peers = env.get("BENCH_PEERS", "0" if smoke else "1") not in ("0", "false", "no", "off")
        return cls(smoke, *low, *ordinary, peers, float(env.get("BENCH_PEER_START_TIMEOUT_S", "120")))


# -- load generation ------------------------------------------------------------------------------
class Client:
    """One keep-alive HTTP/1.1 connection (reopened after errors)."""

    def __init__(self, port: int, timeout_s: float) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def post(self, body: tuple[bytes, str]) -> Sample:
        started = time.monotonic()
        try:
            self.conn.request("POST", PATH, body[0], {"Content-Type": body[1]})
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return Sample(started, time.monotonic() - started, 0)
        latency = time.monotonic() - started
        if response.status != 200:
            return Sample(started, latency, response.status)
        data = json.loads(payload)
        return Sample(started, latency, 200, data["timings_ms"], (data.get("batch") or {}).get("size"))

    def close(self) -> None:
        self.conn.close()


def client_timeout_s(settings: WorkerSettings) -> float:
    """How long a bench client waits for an answer: past the service's own deadline, so an
    overloaded service's 504 is what it records, not a client-side timeout."""
    return settings.request_timeout_s + 10


def closed_loop(port: int, bodies: list, concurrency: int, duration_s: float, timeout_s: float) -> tuple[list, float]:
    """`concurrency` clients each send the next photo as soon as the last answer arrives."""
    samples: list[Sample] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def run(offset: int) -> None:
        client, mine, i = Client(port, timeout_s), [], offset
        while time.monotonic() < stop_at:
            mine.append(client.post(bodies[i % len(bodies)]))
            i += 1
        client.close()
        with lock:
            samples.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(k * 7,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration_s + timeout_s + 5)
    return samples, time.monotonic() - started


# -- what the services report ------------------------------------------------------------------
def scrape(api_port: int) -> dict[str, float]:
    """/metrics samples as {name{labels}: value}, summed over the worker label."""
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if k not in ("worker", "le")}
            if "le" in s.labels:
                continue
            key = s.name + (json.dumps(labels, sort_keys=True) if labels else "")
            values[key] = values.get(key, 0.0) + s.value
    return values


def metrics_delta(before: dict, after: dict) -> dict:
    """Means over one stage from the Prometheus counters (API and worker side)."""

    def mean(name: str, scale: float = 1000.0) -> float | None:
        count = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
        total = after.get(f"{name}_sum", 0) - before.get(f"{name}_sum", 0)
        return round(total / count * scale, 3) if count else None

    return {
        "preprocess_mean_ms": mean("imgclf_preprocess_seconds"),
        "queue_wait_mean_ms": mean("imgclf_queue_wait_seconds"),
        "worker_batch_size_mean": mean("imgclf_worker_batch_size", 1.0),
        "worker_inference_per_batch_mean_ms": mean("imgclf_worker_inference_seconds"),
        "worker_batches": int(
            after.get("imgclf_worker_inference_seconds_count", 0)
            - before.get("imgclf_worker_inference_seconds_count", 0)
        ),
    }


def service_pids(stack: Stack) -> dict[str, list[int]]:
    """Every process of every service (gunicorn and nginx: master plus children)."""
    pids: dict[str, list[int]] = {}
    for name in stack.services():
        pid = stack.pid(name)
        tree = process_tree(pid) if pid is not None else []
        if tree:
            pids[name] = tree
    return pids


def cpu_seconds(stack: Stack) -> dict[str, float]:
    return {name: cpu_seconds_of(pids) for name, pids in service_pids(stack).items()}


def peak_rss(stack: Stack) -> dict:
    """VmHWM per service in MB; multi-process services are summed (shared pages counted twice)."""
    services = service_pids(stack)
    per_service = {name: peak_rss_mb(pids) for name, pids in services.items()}
    processes = {name: len(pids) for name, pids in services.items()}
    return {"services_mb": per_service, "processes": processes, "total_mb": round(sum(per_service.values()), 1)}


# -- stages ---------------------------------------------------------------------------------------
def in_process_limit(photos: list[images.Photo], settings: WorkerSettings, seconds: float) -> dict:
    """Decode + preprocess + LiteRT (the default model) in one process, batch 1 in a loop; then batched."""
    model = artifacts.load(settings.artifacts_dir, settings.default_model)
    backend = load_backend("litert", model, settings.num_threads, settings.batch_num_threads)
    times = ordinary.batch1_loop(backend.run, photos, model.input_size, settings.max_pixels, seconds)
    size = model.input_size
    tensors = tile(np.stack([preprocess(p.data, settings.max_pixels, size=size).tensor for p in photos]), 16)
    pre_mean = statistics.fmean(times.preprocess_s)
    batched = {}
    for b in (8, 16):
        fig = batch_figures(backend.run, tensors[:b], seconds / 2)
        batched[str(b)] = {**fig, "with_preprocess_images_per_s": round(1 / (pre_mean + 1 / fig["images_per_s"]), 2)}
    best = max(batched.values(), key=lambda f: f["with_preprocess_images_per_s"])
    return {
        "backend": "litert",
        "model": f"{model.name}:{model.version}",
        "num_threads": settings.num_threads,
        "batch_num_threads": settings.batch_num_threads,
        "images": len(times.preprocess_s),
        "batch1": {**ordinary.loop_summary(times), "preprocess_mean_ms": round(pre_mean * 1000, 3)},
        "batched": batched,
        "best_batch": best["batch"],
        "best_images_per_s": best["with_preprocess_images_per_s"],
    }


def breakdown(ok: list[Sample]) -> dict:
    """Medians of where each request's time went, from the API's timings_ms."""

    def p50(values: list[float]) -> float:
        return round(percentile(values, 50), 3)

    http = [s.latency_s * 1000 - s.timings["total"] for s in ok]
    untracked = [s.timings["total"] - s.timings["preprocess"] - s.timings["queue"] - s.timings["inference"] for s in ok]
    return {
        "client_p50_ms": p50([s.latency_s * 1000 for s in ok]),
        "api_total_p50_ms": p50([s.timings["total"] for s in ok]),
        "preprocess_p50_ms": p50([s.timings["preprocess"] for s in ok]),
        "queue_p50_ms": p50([s.timings["queue"] for s in ok]),
        "inference_p50_ms": p50([s.timings["inference"] for s in ok]),
        "api_other_p50_ms": p50(untracked),
        "http_and_serialisation_p50_ms": p50(http),
        "batch_size_mean": round(statistics.fmean(s.batch_size or 1 for s in ok), 2) if ok else 0.0,
    }


def level(stack: Stack, bodies: list, concurrency: int, plan: Plan, settings: WorkerSettings) -> dict:
    before_metrics, before_cpu = scrape(stack.config.api_port), cpu_seconds(stack)
    cpu_started = time.process_time()
    samples, wall = closed_loop(stack.config.port, bodies, concurrency, plan.duration_s, client_timeout_s(settings))
    loadgen_cpu = time.process_time() - cpu_started
    after_cpu = cpu_seconds(stack)
    time.sleep(settings.heartbeat_interval_s + 0.2)  # the workers' figures reach /metrics with their heartbeat
    after_metrics = scrape(stack.config.api_port)
    ok = [s for s in samples if s.status == 200]
    return {
        **ordinary.load_figures(concurrency, samples, wall, before_cpu, after_cpu),
        "breakdown": breakdown(ok),
        "metrics": metrics_delta(before_metrics, after_metrics),
        "loadgen_cpu": {"seconds": round(loadgen_cpu, 3), "percent_of_one_core": round(100 * loadgen_cpu / wall, 1)},
    }


def burst_and_recovery(stack: Stack, bodies: list, plan: Plan, settings: WorkerSettings) -> dict:
    """Baseline p50 at concurrency 1, a burst, then concurrency 1 until a 10-request window is back."""
    probe = Client(stack.config.port, client_timeout_s(settings))
    baseline = [probe.post(bodies[i % len(bodies)]) for i in range(2 * RECOVERY_WINDOW)]
    baseline_p50 = percentile([s.latency_s for s in baseline if s.status == 200], 50)
    result: dict = {}
    burst_thread = threading.Thread(
        target=lambda: result.update(
            samples=closed_loop(
                stack.config.port, bodies, plan.burst_concurrency, plan.burst_s, client_timeout_s(settings)
            )
        ),
        daemon=True,
    )
    burst_started = time.monotonic()
    burst_thread.start()
    time.sleep(plan.burst_s)
    burst_end = time.monotonic()
    window: list[float] = []
    recovered_after, probes, i = None, 0, 0
    while time.monotonic() - burst_end < plan.recovery_timeout_s:
        sample = probe.post(bodies[i % len(bodies)])
        i, probes = i + 1, probes + 1
        window = [*window, sample.latency_s if sample.status == 200 else float("inf")][-RECOVERY_WINDOW:]
        if len(window) == RECOVERY_WINDOW and statistics.median(window) <= RECOVERY_FACTOR * baseline_p50:
            recovered_after = time.monotonic() - burst_end
            break
    probe.close()
    burst_thread.join(settings.request_timeout_s + 30)
    samples = result.get("samples", ([], 0.0))[0]
    by_status: dict[str, dict] = {}
    for status, count in sorted(Counter(s.status for s in samples).items()):
        lat = [s.latency_s for s in samples if s.status == status]
        first = min(s.started + s.latency_s for s in samples if s.status == status) - burst_started
        by_status[str(status)] = {"count": count, "latency_ms": latency_summary(lat), "first_at_s": round(first, 3)}
    return {
        "concurrency": plan.burst_concurrency,
        "duration_s": plan.burst_s,
        "requests": len(samples),
        "by_status": by_status,
        "timeouts_or_connection_errors": by_status.get("0", {}).get("count", 0)
        + by_status.get("504", {}).get("count", 0),
        "baseline_p50_ms": round(baseline_p50 * 1000, 3),
        "recovered": recovered_after is not None,
        "recovery_s": round(recovered_after, 3) if recovered_after is not None else None,
        "probe_requests": probes,
    }


def cli_stage(stack: Stack, bodies: list, plan: Plan, settings: WorkerSettings, out_dir: Path) -> dict:
    """`imgclf classify DIR --concurrency 4` over a folder, against closed loops at 4 right before and after it.

    The CLI's own rate runs from its first request (Python start-up and imports excluded): the ratio
    compares how it drives the server, which is what a long run over a big folder is made of.
    """
    exe = VENV_BIN / "imgclf"
    if not exe.exists():
        return {"skipped": f"{exe} is not installed"}
    check = subprocess.run([str(exe), "classify", "--help"], capture_output=True, text=True, timeout=60, check=False)
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"`imgclf classify --help` failed: {last}"}
    count = plan.cli_images
    folder, out = images.folder(count), out_dir / "cli-bench.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # the CLI resumes from an existing results file
    argv = [str(exe), "classify", str(folder), "--out", str(out), "--concurrency", "4", "--url", stack.config.url]
    loop_s, timeout_s = plan.duration_s / 2, client_timeout_s(settings)
    loops = [closed_loop(stack.config.port, bodies, 4, loop_s, timeout_s)]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    wall = time.monotonic() - started
    loops.append(closed_loop(stack.config.port, bodies, 4, loop_s, timeout_s))
    c4 = round(statistics.fmean(sum(s.status == 200 for s in samples) / took for samples, took in loops), 2)
    rows = max(len(out.read_text().splitlines()) - 1, 0) if out.exists() else 0
    reported = re.search(r"\(([\d.]+) images/s\)", proc.stdout + proc.stderr)
    ips = float(reported.group(1)) if reported else count / wall
    return {
        "images": count,
        "exit_code": proc.returncode,
        "csv_rows": rows,
        "wall_s": round(wall, 3),
        "wall_images_per_s": round(count / wall, 2),
        "images_per_s": round(ips, 2),
        "closed_loop_c4_images_per_s": c4,
        "ratio": round(ips / c4, 3) if c4 else None,
        "wall_ratio": round(count / wall / c4, 3) if c4 else None,
    }


def service_stage(stack: Stack, choice: ordinary.PhotoChoice, plan: Plan, settings: WorkerSettings) -> dict:
    """The ordinary client against this service (through nginx), after the reference loop."""
    loop = ordinary.reference_loop(choice.photos, settings.artifacts_dir, settings.max_pixels, plan.loop_s)
    target = ordinary.Target("this service", stack.config.url + PATH, "image", lambda: cpu_seconds(stack))
    timeout_s = client_timeout_s(settings)
    return ordinary.stage(target, choice.photos, plan.ordinary_levels, plan.ordinary_s, timeout_s, loop)


def bentoml_stage(choice: ordinary.PhotoChoice, plan: Plan, settings: WorkerSettings) -> dict:
    """The BentoML peer (own venv, 2 workers, adaptive batching) serving the default model, same harness."""
    if not plan.peers:
        return {"skipped": "BENCH_PEERS=0"}
    model = artifacts.load(settings.artifacts_dir, settings.default_model)
    timeout_s = client_timeout_s(settings)
    run_dir = ROOT / ".test-run" / "bench-peer"
    try:
        with bentoml_peer.running(
            model, free_base_port(19300, span=1), run_dir, 2, settings.max_pixels, plan.peer_start_timeout_s
        ) as peer:
            url = peer.url + "/classify"
            ordinary.closed_loop(url, "images", choice.photos, 2, 1.0 if plan.smoke else 3.0, timeout_s)  # warm-up
            loop = ordinary.reference_loop(choice.photos, settings.artifacts_dir, settings.max_pixels, plan.loop_s)
            target = ordinary.Target(
                f"BentoML {bentoml_peer.version()}, 2 workers, adaptive batching", url, "images", peer.cpu_seconds
            )
            figures = ordinary.stage(target, choice.photos, plan.peer_levels, plan.ordinary_s, timeout_s, loop)
            return {**figures, "model": f"{model.name}:{model.version}", "peak_rss": peer.peak_rss_mb()}
    except bentoml_peer.PeerUnavailable as exc:
        return {"skipped": str(exc)}


# -- the run ---------------------------------------------------------------------------------------
def own_stack(name: str, start_port: int) -> Stack:
    """A stack (not yet up) on free ports >= start_port, run dir .test-run/<name>, result cache off.

    The run dir starts empty: Redis data an earlier run left (its predictions, in the store's
    AOF) would grow the store's RSS and its rewrites from run to run.
    """
    config = StackConfig(
        run_dir=ROOT / ".test-run" / name,
        port=free_base_port(start_port),
        workers=int(os.environ.get("BENCH_WORKERS", "1")),
        env=STACK_ENV,
    )
    stack = Stack(config)
    stack.down()  # leftovers of an interrupted earlier run
    shutil.rmtree(config.run_dir, ignore_errors=True)
    return stack


def run(plan: Plan, out_dir: Path) -> dict:
    photos = images.photo_set(plan.image_count)
    bodies = [images.multipart(p) for p in photos]
    stack = own_stack("bench-smoke" if plan.smoke else "bench", 19200)
    config = stack.config
    settings = WorkerSettings.from_env(stack.service_env())
    api_settings = ApiSettings.from_env(stack.service_env())
    data: dict = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "smoke": plan.smoke,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_start": list(os.getloadavg()),
            "note": "shared machine: other processes may take CPU during the run",
        },
        "config": {
            "duration_s": plan.duration_s,
            "levels": list(plan.levels),
            "workers": config.workers,
            "url": config.url,
            "max_batch": settings.max_batch,
            "batch_wait_ms": settings.batch_wait_ms,
            "api_processes": api_settings.api_processes,
            "api_threads": api_settings.api_threads,
            "num_threads": settings.num_threads,
            "batch_num_threads": settings.batch_num_threads,
            "cache_ttl_s": api_settings.cache_ttl_s,
        },
        "images": images.summary(photos),
        "in_process": in_process_limit(photos, settings, plan.in_process_s),
    }
    choice = ordinary.reference_photos(settings.imagenet_sample_dir)
    data["ordinary"] = {
        "photos": {
            "source": choice.source,
            "names": [p.name for p in choice.photos],
            "fallback_reason": choice.fallback_reason,
        },
        "duration_s": plan.ordinary_s,
        "client": "threads + requests (one Session per thread), multipart upload",
    }
    try:
        stack.up()
        closed_loop(config.port, bodies, 2, 1.0 if plan.smoke else 3.0, client_timeout_s(settings))  # warm-up
        limit = data["in_process"]["batch1"]["images_per_s"]
        data["end_to_end"] = []
        for concurrency in plan.levels:
            figures = level(stack, bodies, concurrency, plan, settings)
            figures["ratio_to_in_process"] = round(figures["images_per_s"] / limit, 3)
            data["end_to_end"].append(figures)
        data["ordinary"]["service"] = service_stage(stack, choice, plan, settings)
        data["burst"] = burst_and_recovery(stack, bodies, plan, settings)
        data["cli"] = cli_stage(stack, bodies, plan, settings, out_dir)
        data["peak_rss"] = peak_rss(stack)
    finally:
        stack.down()
    data["ordinary"]["bentoml"] = bentoml_stage(choice, plan, settings)
    data["targets"] = targets.evaluate(data)
    data["machine"]["loadavg_end"] = list(os.getloadavg())
    return data


def report(data: dict) -> None:
    img, lim = data["images"], data["in_process"]
    print(
        f"{img['count']} photos, {img['megapixels']['min']}-{img['megapixels']['max']} MP, {img['formats']}; "
        f"cache off; {data['config']['workers']} worker(s); shared machine\n"
    )
    b1 = lim["batch1"]
    print(
        f"in-process limit (litert, batch 1): {b1['images_per_s']} images/s, p50 {b1['latency_p50_ms']} ms "
        f"(preprocess p50 {b1['preprocess_p50_ms']} ms, inference p50 {b1['inference_p50_ms']} ms); "
        f"best batch {lim['best_batch']}: {lim['best_images_per_s']} images/s\n"
    )
    rows = []
    for f in data["end_to_end"]:
        lat, bd = f["latency_ms"], f["breakdown"]
        rows.append(
            [
                f["concurrency"],
                f["requests"],
                f["errors"],
                f["images_per_s"],
                f["ratio_to_in_process"],
                lat["p50"],
                lat["p95"],
                lat["p99"],
                bd["preprocess_p50_ms"],
                bd["queue_p50_ms"],
                bd["inference_p50_ms"],
                bd["http_and_serialisation_p50_ms"],
                bd["batch_size_mean"],
                f["loadgen_cpu"]["percent_of_one_core"],
            ]
        )
    print_table(
        [
            "conc",
            "reqs",
            "errs",
            "img/s",
            "÷limit",
            "p50",
            "p95",
            "p99",
            "prep",
            "queue",
            "infer",
            "http",
            "batch",
            "gen%",
        ],
        rows,
    )
    print("\nCPU ms per image by service:")
    names = list(data["end_to_end"][0]["service_cpu_ms_per_image"])
    print_table(
        ["conc", *names], [[f["concurrency"], *f["service_cpu_ms_per_image"].values()] for f in data["end_to_end"]]
    )
    b = data["burst"]
    statuses = ", ".join(f"{k}: {v['count']}" for k, v in b["by_status"].items())
    print(
        f"\nburst {b['concurrency']} x {b['duration_s']} s: {b['requests']} requests ({statuses}); "
        f"back within {RECOVERY_FACTOR}x of {b['baseline_p50_ms']} ms after "
        f"{b['recovery_s'] if b['recovered'] else 'NOT recovered'} s"
    )
    rss = data["peak_rss"]
    print(
        "\npeak RSS (VmHWM, MB): "
        + ", ".join(f"{k} {v}" for k, v in rss["services_mb"].items())
        + f"; total {rss['total_mb']}"
    )
    cli = data["cli"]
    print(
        "\nCLI: "
        + (
            cli["skipped"]
            if "skipped" in cli
            else f"{cli['images_per_s']} images/s vs {cli['closed_loop_c4_images_per_s']} closed-loop c=4 "
            f"(ratio {cli['ratio']}; from process start {cli['wall_ratio']}; exit {cli['exit_code']}, "
            f"{cli['csv_rows']} rows)"
        )
    )
    report_ordinary(data["ordinary"])
    print("\ntargets (issue #15):")
    met = {True: "yes", False: "NO", None: "n/a"}
    print_table(
        ["target", "goal", "measured", "met"],
        [[t["target"], t["goal"], t["measured"], met[t["met"]]] for t in data["targets"]],
    )


def report_ordinary(section: dict) -> None:
    """The ordinary-client stage: each system's levels, its best over its own loop, CPU per image."""
    photos = section["photos"]
    note = f" (FALLBACK: {photos['fallback_reason']})" if photos["fallback_reason"] else ""
    print(
        f"\nordinary client ({section['client']}), {section['duration_s']} s per level; "
        f"photos: {len(photos['names'])} from {photos['source']}{note}"
    )
    for key in ("service", "bentoml"):
        stage = section[key]
        if "skipped" in stage:
            print(f"\n{key}: skipped: {stage['skipped']}")
            continue
        loop = stage["reference_loop"]
        rss = f"; peak RSS {stage['peak_rss']['total_mb']} MB" if "peak_rss" in stage else ""
        print(
            f"\n{stage['system']}: reference loop ({loop['model']}) {loop['images_per_s']} images/s, "
            f"p50 {loop['latency_p50_ms']} ms (on 2 threads: {loop['two_threads']['images_per_s']} images/s, "
            f"p50 {loop['two_threads']['latency_p50_ms']} ms); best {stage['best_images_per_s']} images/s = "
            f"{stage['best_over_loop']}x loop{rss}"
        )
        names = list(stage["levels"][0]["service_cpu_ms_per_image"])
        print_table(
            ["conc", "reqs", "errs", "img/s", "÷loop", "p50", "p95", "p99", "gen%", *(f"{n} ms/img" for n in names)],
            [
                [
                    f["concurrency"],
                    f["requests"],
                    f["errors"],
                    f["images_per_s"],
                    round(f["images_per_s"] / loop["images_per_s"], 3),
                    f["latency_ms"]["p50"],
                    f["latency_ms"]["p95"],
                    f["latency_ms"]["p99"],
                    f["client_cpu_percent_of_one_core"],
                    *f["service_cpu_ms_per_image"].values(),
                ]
                for f in stage["levels"]
            ],
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the whole stack end to end.")
    parser.add_argument(
        "--smoke", action="store_true", default=os.environ.get("BENCH_SMOKE") == "1", help="a seconds-long run for CI"
    )
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    data = run(Plan.make(args.smoke), args.out_dir)
    report(data)
    print(f"\nwrote {write_results('bench', data, args.out_dir)}")
    levels = [*data["end_to_end"], *data["ordinary"]["service"]["levels"]]
    return 1 if any(f["errors"] for f in levels) else 0  # the peer's errors are its own figures


if __name__ == "__main__":
    sys.exit(main())

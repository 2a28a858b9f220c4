"""Model benchmark (``make bench-model``, ``python -m loadtest.bench_model``): every built
model's speed and the worker's cost.

Each backend and model is timed in its own subprocess, so the LiteRT figures
come from a process that never imported TensorFlow and TensorFlow runs with the
glibc malloc settings it needs for fair figures. The worker's start-to-ready
time, lone-job round trip and peak RSS come from a real ``ml-worker`` process
serving jobs from a real Redis (ready once its heartbeat is live), once with the
default model only and once with every built model. Each float model and its int8
variant are timed side by side, in turn in one process (batch 1 on 1 and 2 threads,
batch 8 on 1). Prints tables and writes JSON under ``loadtest/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from loadtest.figures import batch_figures, latency_summary, print_table, proc_status_kb, tile, write_results
from ml_worker import golden
from ml_worker.build import INT8_SUFFIX
from scripts.ports import free_base_port
from scripts.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZES = (1, 8, 16)
PRECISION_SETTINGS = ((1, 1), (1, 2), (8, 1))  # (batch, LiteRT threads) for float vs int8: lone job idle/busy, batch
TF_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.arena_max=1"
TARGETS = {"litert_b1_p50_ms": 10.0, "litert_b1_images_per_s": 120.0, "worker_ready_s": 3.0, "worker_rss_mb": 400.0}


# -- one backend and model, in this process (run as a subprocess by the parent) ---------------
def measure_backend(name: str, model_name: str, seconds: float) -> dict:
    from ml_worker import artifacts
    from ml_worker.backends import load_backend
    from ml_worker.settings import WorkerSettings

    settings = WorkerSettings.from_env()
    started = time.perf_counter()
    model = artifacts.load(settings.artifacts_dir, model_name)
    backend = load_backend(name, model, settings.num_threads, settings.batch_num_threads)
    load_s = time.perf_counter() - started
    tensors = golden.tensors(model.input_size)
    batches = [batch_figures(backend.run, tile(tensors, b), seconds) for b in BATCH_SIZES]
    return {
        "backend": name,
        "model": model_name,
        "input_size": model.input_size,
        "num_threads": settings.num_threads,
        "batch_num_threads": settings.batch_num_threads,
        "load_s": round(load_s, 3),
        "batches": batches,
        "process_peak_rss_mb": round(proc_status_kb(os.getpid(), "VmHWM") / 1024, 1),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def interleave(calls: dict[str, Callable[[], object]], seconds: float, max_rounds: int = 5000) -> dict[str, dict]:
    """Latency of each call, made in turn round by round in one process, so a noisy (shared) machine
    slows them alike: what this is for is the ratios between them. Bounded by time and rounds."""
    durations: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + seconds * len(calls)
    for round_ in range(max_rounds):
        if round_ >= 5 and time.perf_counter() > deadline:
            break
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            durations[name].append(time.perf_counter() - started)
    return {name: latency_summary(d[3:]) for name, d in durations.items()}  # the first calls plan the graph


def interleaved_batch1(models: list[str], seconds: float) -> dict:
    """LiteRT batch-1 latency of each model (the worker's thread settings), model by model in turn."""
    from ml_worker import artifacts
    from ml_worker.backends import load_backend
    from ml_worker.settings import WorkerSettings

    settings = WorkerSettings.from_env()
    calls = {}
    for name in models:
        model = artifacts.load(settings.artifacts_dir, name)
        backend = load_backend("litert", model, settings.num_threads, settings.batch_num_threads)
        calls[name] = partial(backend.run, golden.tensors(model.input_size)[:1])
    figures = interleave(calls, seconds)
    first = figures[models[0]]["p50"]
    return {name: {**f, "p50_vs_first": round(f["p50"] / first, 3)} for name, f in figures.items()}


def float_vs_int8(pairs: list[tuple[str, str]], seconds: float) -> list[dict]:
    """Each float model beside its int8 variant at every PRECISION_SETTINGS (batch, threads), the two
    called in turn in this process; ``speedup``: float p50 / int8 p50."""
    from ml_worker import artifacts
    from ml_worker.backends.litert import LiteRTBackend
    from ml_worker.settings import WorkerSettings

    artifacts_dir = WorkerSettings.from_env().artifacts_dir
    rows = []
    for float_name, int8_name in pairs:
        models = [artifacts.load(artifacts_dir, name) for name in (float_name, int8_name)]
        tensors = golden.tensors(models[0].input_size)
        for batch, threads in PRECISION_SETTINGS:
            calls = {m.name: partial(LiteRTBackend(m.tflite, threads).run, tile(tensors, batch)) for m in models}
            f, q = (interleave(calls, seconds)[m.name] for m in models)
            rows.append(
                {
                    "model": float_name,
                    "batch": batch,
                    "threads": threads,
                    "float": f,
                    "int8": q,
                    "float_images_per_s": round(batch * 1000 / f["p50"], 1),
                    "int8_images_per_s": round(batch * 1000 / q["p50"], 1),
                    "speedup": round(f["p50"] / q["p50"], 2),
                }
            )
    return rows


def run_backend_subprocess(name: str, model_name: str, seconds: float) -> dict:
    env = {**os.environ, "BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if name == "tensorflow":
        env["GLIBC_TUNABLES"] = TF_MALLOC
    argv = [sys.executable, "-m", "loadtest.bench_model", "--backend-only", name, "--model", model_name]
    argv += ["--seconds", str(seconds)]
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        return {"backend": name, "model": model_name, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- a real worker process -----------------------------------------------------------------------
def _wait_live(stack: Stack, name: str, timeout_s: float) -> bool:
    """Until the worker's heartbeat is live (polled every 5 ms, so the figure is that precise)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.worker_live(name):
            return True
        time.sleep(0.005)
    return False


def feed_jobs(client, model: str, tensors: np.ndarray, rounds: int, burst: int) -> list[float]:
    """Queue bursts of jobs for one model the way the API does; the round trip of each burst answered."""
    from imgclf_contract import keys
    from imgclf_contract.jobs import Job, now_ms

    round_trips = []
    for r in range(rounds):
        deadline_ms = now_ms() + 10_000
        jobs = [
            Job(uuid.uuid4().hex, f"bench-{r}-{i}", deadline_ms, model, "1", tensors[(r + i) % len(tensors)].tobytes())
            for i in range(burst)
        ]
        started = time.perf_counter()
        for job in jobs:
            pipe = client.pipeline(transaction=False)
            job.add_to(pipe)
            pipe.execute()
        if all(client.blpop([keys.reply(job.job_id)], timeout=10) is not None for job in jobs):
            round_trips.append(time.perf_counter() - started)
    return round_trips


def measure_worker(starts: int, models: list[str]) -> dict:
    """A worker serving ``models``: spawn-to-ready over several starts, the round trip of a lone job
    for the first model, then peak RSS after serving single and batched jobs for every model."""
    from ml_worker import artifacts
    from ml_worker.settings import WorkerSettings

    config = StackConfig(
        run_dir=ROOT / ".test-run" / "bench-model",
        port=free_base_port(19100),
        workers=1,
        env={"BACKEND": "litert", "MODELS": ",".join(models)},
    )
    stack = Stack(config)
    stack.down()
    try:
        stack.start("redis-queue")  # all a worker talks to
        ready: list[dict] = []
        for n in range(starts):
            if n:
                stack.stop("worker-1")
            spawned = time.monotonic()
            stack.start("worker-1", wait=False)
            if not _wait_live(stack, "worker-1", timeout_s=60):
                return {"error": f"worker not ready in 60 s; read {stack.log_path('worker-1')}"}
            ready.append({"spawn_to_ready_s": round(time.monotonic() - spawned, 3)})
        client = stack.redis("queue", socket_timeout=15)
        artifacts_dir = WorkerSettings.from_env().artifacts_dir
        answered, lone = 0, []
        for model in models:
            tensors = golden.tensors(artifacts.load(artifacts_dir, model).input_size)
            singles = feed_jobs(client, model, tensors, rounds=40, burst=1)
            lone = lone or singles
            answered += len(singles) + 16 * len(feed_jobs(client, model, tensors, rounds=10, burst=16))
        pid = stack.pid("worker-1")
        return {
            "models": models,
            "starts": ready,
            "spawn_to_ready_s": {
                "median": statistics.median(r["spawn_to_ready_s"] for r in ready),
                "max": max(r["spawn_to_ready_s"] for r in ready),
            },
            "jobs_answered": answered,
            "lone_job_round_trip_ms": latency_summary(lone),
            "peak_rss_mb": round(proc_status_kb(pid, "VmHWM") / 1024, 1),
            "rss_mb": round(proc_status_kb(pid, "VmRSS") / 1024, 1),
        }
    finally:
        stack.down()


# -- report -----------------------------------------------------------------------------------------
def targets(backends: list[dict], worker: dict, default_model: str) -> dict:
    """The issue's targets, on the default model."""
    wanted = ("litert", default_model)
    lite = next((b for b in backends if (b.get("backend"), b.get("model")) == wanted and "batches" in b), None)
    b1 = lite["batches"][0] if lite else {"latency_ms": {"p50": float("nan")}, "images_per_s": 0.0}
    measured = {
        "litert_b1_p50_ms": b1["latency_ms"]["p50"],
        "litert_b1_images_per_s": b1["images_per_s"],
        "worker_ready_s": worker.get("spawn_to_ready_s", {}).get("max", float("nan")),
        "worker_rss_mb": worker.get("peak_rss_mb", float("nan")),
    }
    higher_is_better = {"litert_b1_images_per_s"}
    return {
        k: {
            "target": t,
            "measured": measured[k],
            "met": bool(measured[k] >= t if k in higher_is_better else measured[k] <= t),
        }
        for k, t in TARGETS.items()
    }


def report(data: dict) -> None:
    rows = []
    for b in data["backends"]:
        for fig in b.get("batches", []):
            lat = fig["latency_ms"]
            figures = [fig["images_per_s"], lat["p50"], lat["p99"], fig["per_image_p50_ms"], b["process_peak_rss_mb"]]
            rows.append([b["model"], b["backend"], fig["batch"], *figures])
        if "error" in b:
            rows.append([b["model"], b["backend"], "-", "error", " ".join(b["error"]), "", "", ""])
    print_table(["model", "backend", "batch", "images/s", "p50 ms", "p99 ms", "ms/image", "peak RSS MB"], rows)
    print()
    rows = []
    for w in data["workers"]:
        if "error" in w:
            rows.append([",".join(w["models"]), w["error"], "", "", ""])
            continue
        figures = [w["spawn_to_ready_s"]["median"], w["lone_job_round_trip_ms"]["p50"], w["peak_rss_mb"]]
        rows.append([",".join(w["models"]), *figures, w["jobs_answered"]])
    print_table(["worker (litert) serving", "ready s", "lone job p50 ms", "peak RSS MB", "jobs"], rows)
    print()
    print_table(
        [
            "float vs int8, interleaved",
            "batch",
            "threads",
            "float p50 ms",
            "int8 p50 ms",
            "float img/s",
            "int8 img/s",
            "speedup",
        ],
        [
            [
                r["model"],
                r["batch"],
                r["threads"],
                r["float"]["p50"],
                r["int8"]["p50"],
                r["float_images_per_s"],
                r["int8_images_per_s"],
                r["speedup"],
            ]
            for r in data["float_vs_int8"]
        ],
    )
    print()
    pairs = data["interleaved_batch1"]
    print_table(
        ["litert batch 1, interleaved", "p50 ms", "p99 ms", "p50 vs first"],
        [[name, f["p50"], f["p99"], f["p50_vs_first"]] for name, f in pairs.items()],
    )
    print()
    print_table(
        ["target", "goal", "measured", "met"],
        [[k, v["target"], v["measured"], "yes" if v["met"] else "NO"] for k, v in data["targets"].items()],
    )


def main(argv: list[str] | None = None) -> int:
    from ml_worker import artifacts
    from ml_worker.settings import WorkerSettings

    parser = argparse.ArgumentParser(description="Benchmark the inference backends and the worker.")
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("BENCH_MODEL_SECONDS", "3")),
        help="timing per backend, model and batch size",
    )
    parser.add_argument("--starts", type=int, default=3, help="worker starts to time")
    parser.add_argument("--backend-only", choices=["litert", "tensorflow"], help=argparse.SUPPRESS)
    parser.add_argument("--model", action="append", help="model to time (repeatable; default: every built model)")
    args = parser.parse_args(argv)
    settings = WorkerSettings.from_env()
    if args.backend_only:
        print(json.dumps(measure_backend(args.backend_only, args.model[0], args.seconds)))
        return 0
    models = args.model or artifacts.built_names(settings.artifacts_dir)
    default = settings.default_model if settings.default_model in models else models[0]
    # An int8 variant has no SavedModel: only LiteRT runs it.
    with_savedmodel = [m for m in models if artifacts.load(settings.artifacts_dir, m).saved_model is not None]
    backends = [
        run_backend_subprocess(b, m, args.seconds)
        for m in models
        for b in ("litert", "tensorflow")
        if b == "litert" or m in with_savedmodel
    ]
    configurations = [[default], models] if len(models) > 1 else [models]
    workers = [{"models": c, **measure_worker(args.starts, c)} for c in configurations]
    pairs = interleaved_batch1([default, *(m for m in models if m != default)], args.seconds)
    quantised = [(m, m + INT8_SUFFIX) for m in models if m + INT8_SUFFIX in models]
    data = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "seconds_per_batch_size": args.seconds,
        "backends": backends,
        "workers": workers,
        "interleaved_batch1": pairs,
        "float_vs_int8": float_vs_int8(quantised, args.seconds),
    }
    data["targets"] = targets(backends, workers[0], default)
    report(data)
    print(f"\nwrote {write_results('bench-model', data)}")
    return 0 if all("error" not in b for b in backends) and all("error" not in w for w in workers) else 1


if __name__ == "__main__":
    sys.exit(main())

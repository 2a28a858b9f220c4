"""Model benchmark (``make bench-model``, ``python -m loadtest.bench_model``): the backends'
speed and the worker's cost.

Each backend is timed in its own subprocess, so the LiteRT figures come from a
process that never imported TensorFlow and TensorFlow runs with the glibc
malloc settings it needs for fair figures. The worker's start-to-ready time
and peak RSS come from a real ``ml-worker`` process serving jobs from a real
Redis, ready once its heartbeat is live. Prints a table and writes JSON under
``loadtest/results/``.
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
from pathlib import Path

import numpy as np

from loadtest.figures import batch_figures, print_table, proc_status_kb, tile, write_results
from ml_worker import golden
from scripts.ports import free_base_port
from scripts.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZES = (1, 8, 16)
TF_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.arena_max=1"
TARGETS = {"litert_b1_p50_ms": 10.0, "litert_b1_images_per_s": 120.0, "worker_ready_s": 3.0, "worker_rss_mb": 400.0}


# -- one backend, in this process (run as a subprocess by the parent) ---------------------------
def measure_backend(name: str, seconds: float) -> dict:
    from ml_worker import artifacts
    from ml_worker.backends import load_backend
    from ml_worker.settings import WorkerSettings

    settings = WorkerSettings.from_env()
    started = time.perf_counter()
    backend = load_backend(name, artifacts.load(settings), settings.num_threads, settings.batch_num_threads)
    load_s = time.perf_counter() - started
    tensors = golden.tensors()
    batches = [batch_figures(backend.predict, tile(tensors, b), seconds) for b in BATCH_SIZES]
    return {
        "backend": name,
        "num_threads": settings.num_threads,
        "batch_num_threads": settings.batch_num_threads,
        "load_s": round(load_s, 3),
        "batches": batches,
        "process_peak_rss_mb": round(proc_status_kb(os.getpid(), "VmHWM") / 1024, 1),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def run_backend_subprocess(name: str, seconds: float) -> dict:
    env = {**os.environ, "BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if name == "tensorflow":
        env["GLIBC_TUNABLES"] = TF_MALLOC
    argv = [sys.executable, "-m", "loadtest.bench_model", "--backend-only", name, "--seconds", str(seconds)]
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        return {"backend": name, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- a real worker process -----------------------------------------------------------------------
def feed_jobs(client, tensors: np.ndarray, rounds: int, burst: int) -> int:
    """Queue bursts of jobs the way the API does and wait for every answer; returns jobs answered."""
    from imgclf_contract import keys
    from imgclf_contract.jobs import Job, now_ms

    answered = 0
    for r in range(rounds):
        jobs = [
            Job(uuid.uuid4().hex, f"bench-{r}-{i}", now_ms() + 10_000, tensors[(r + i) % len(tensors)].tobytes())
            for i in range(burst)
        ]
        for job in jobs:
            client.xadd(keys.JOBS_STREAM, job.to_fields())
        answered += sum(client.blpop([keys.reply(job.job_id)], timeout=10) is not None for job in jobs)
    return answered


def _wait_live(stack: Stack, name: str, timeout_s: float) -> bool:
    """Until the worker's heartbeat is live (polled every 5 ms, so the figure is that precise)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.worker_live(name):
            return True
        time.sleep(0.005)
    return False


def measure_worker(starts: int) -> dict:
    """Spawn-to-ready over several starts, then peak RSS after serving single and batched jobs."""
    run_dir = ROOT / ".test-run" / "bench-model"
    config = StackConfig(run_dir=run_dir, port=free_base_port(19100), workers=1, env={"BACKEND": "litert"})
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
        tensors = golden.tensors()
        answered = feed_jobs(client, tensors, rounds=40, burst=1) + feed_jobs(client, tensors, rounds=10, burst=16)
        pid = stack.pid("worker-1")
        return {
            "starts": ready,
            "spawn_to_ready_s": {
                "median": statistics.median(r["spawn_to_ready_s"] for r in ready),
                "max": max(r["spawn_to_ready_s"] for r in ready),
            },
            "jobs_answered": answered,
            "peak_rss_mb": round(proc_status_kb(pid, "VmHWM") / 1024, 1),
            "rss_mb": round(proc_status_kb(pid, "VmRSS") / 1024, 1),
        }
    finally:
        stack.down()


# -- report -----------------------------------------------------------------------------------------
def targets(backends: list[dict], worker: dict) -> dict:
    lite = next((b for b in backends if b.get("backend") == "litert" and "batches" in b), None)
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
            rows.append(
                [b["backend"], fig["batch"], fig["images_per_s"], lat["p50"], lat["p99"], fig["per_image_p50_ms"]]
            )
        if "error" in b:
            rows.append([b["backend"], "-", "error", " ".join(b["error"]), "", ""])
    print_table(["backend", "batch", "images/s", "p50 ms", "p99 ms", "ms/image"], rows)
    w = data["worker"]
    if "error" in w:
        print(f"\nworker: {w['error']}")
    else:
        print(
            f"\nworker (litert): spawn-to-ready median {w['spawn_to_ready_s']['median']} s, "
            f"max {w['spawn_to_ready_s']['max']} s; peak RSS {w['peak_rss_mb']} MB after {w['jobs_answered']} jobs"
        )
    print()
    print_table(
        ["target", "goal", "measured", "met"],
        [[k, v["target"], v["measured"], "yes" if v["met"] else "NO"] for k, v in data["targets"].items()],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the inference backends and the worker.")
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("BENCH_MODEL_SECONDS", "3")),
        help="timing per backend and batch size",
    )
    parser.add_argument("--starts", type=int, default=3, help="worker starts to time")
    parser.add_argument("--backend-only", choices=["litert", "tensorflow"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.backend_only:
        print(json.dumps(measure_backend(args.backend_only, args.seconds)))
        return 0
    backends = [run_backend_subprocess(name, args.seconds) for name in ("litert", "tensorflow")]
    worker = measure_worker(args.starts)
    data = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "seconds_per_batch_size": args.seconds,
        "backends": backends,
        "worker": worker,
    }
    data["targets"] = targets(backends, worker)
    report(data)
    print(f"\nwrote {write_results('bench-model', data)}")
    return 0 if all("error" not in b for b in backends) and "error" not in worker else 1


if __name__ == "__main__":
    sys.exit(main())

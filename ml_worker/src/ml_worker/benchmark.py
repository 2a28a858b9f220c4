"""Model benchmark (``make bench-model``): the backends' speed and the worker's cost.

Each backend is timed in its own subprocess, so the LiteRT figures come from a
process that never imported TensorFlow and TensorFlow runs with the glibc
malloc settings it needs for fair figures. The worker's start-to-ready time
and peak RSS come from a real ``ml-worker`` process serving jobs from a real
Redis. Prints a table and writes JSON under ``loadtest/results/``.
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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "loadtest" / "results"
BATCH_SIZES = (1, 8, 16)
TF_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.arena_max=1"
TARGETS = {"litert_b1_p50_ms": 10.0, "litert_b1_images_per_s": 120.0, "worker_ready_s": 3.0, "worker_rss_mb": 400.0}


# -- small helpers shared with loadtest/bench.py --------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); 0.0 for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(ms, 50), 3),
        "p95": round(percentile(ms, 95), 3),
        "p99": round(percentile(ms, 99), 3),
        "mean": round(statistics.fmean(ms), 3) if ms else 0.0,
    }


def proc_status_kb(pid: int, field: str) -> int:
    """A /proc/PID/status figure in kB (VmHWM: peak RSS, VmRSS: current); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def write_results(prefix: str, data: dict, out_dir: Path = RESULTS) -> Path:
    """<prefix>-<timestamp>.json plus <prefix>-latest.json (or latest.json for the stack bench)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{prefix}-{stamp}.json"
    text = json.dumps(data, indent=2) + "\n"
    path.write_text(text)
    (out_dir / ("latest.json" if prefix == "bench" else f"{prefix}-latest.json")).write_text(text)
    return path


def golden_tensors() -> np.ndarray:
    """The golden photos through the real preprocessing: realistic inputs for timing."""
    from imgclf_contract.preprocess import preprocess
    from ml_worker.settings import WorkerSettings

    golden = Path(__file__).resolve().parent / "golden"
    max_pixels = WorkerSettings.from_env().max_pixels
    paths = sorted(p for p in golden.iterdir() if p.suffix in (".png", ".jpg"))
    return np.stack([preprocess(p.read_bytes(), max_pixels).tensor for p in paths])


def tile(tensors: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(tensors, (n, *tensors.shape[1:])))


def time_calls(call: Callable[[], object], seconds: float, min_calls: int = 5, max_calls: int = 5000) -> list[float]:
    """Durations of repeated calls: at least min_calls, then until `seconds` or max_calls."""
    durations: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(durations) < max_calls and (len(durations) < min_calls or time.perf_counter() < deadline):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def batch_figures(predict: Callable[[np.ndarray], object], batch: np.ndarray, seconds: float) -> dict:
    """Throughput and per-call latency of predict() on one batch (after warm-up re-planning)."""
    for _ in range(3):
        predict(batch)
    durations = time_calls(lambda: predict(batch), seconds)
    n = batch.shape[0]
    return {
        "batch": n,
        "calls": len(durations),
        "images_per_s": round(n * len(durations) / sum(durations), 2),
        "latency_ms": latency_summary(durations),
        "per_image_p50_ms": round(percentile(durations, 50) * 1000 / n, 3),
    }


# -- one backend, in this process (run as a subprocess by the parent) ---------------------------
def measure_backend(name: str, seconds: float) -> dict:
    from ml_worker import artifacts
    from ml_worker.backends import load_backend
    from ml_worker.settings import WorkerSettings

    settings = WorkerSettings.from_env()
    started = time.perf_counter()
    backend = load_backend(name, artifacts.load(settings), settings.num_threads, settings.batch_num_threads)
    load_s = time.perf_counter() - started
    tensors = golden_tensors()
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
    argv = [sys.executable, "-m", "ml_worker.benchmark", "--backend-only", name, "--seconds", str(seconds)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        return {"backend": name, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- a real worker process -----------------------------------------------------------------------
def _stack_module():
    sys.path.insert(0, str(ROOT / "scripts"))
    import stack

    return stack


def free_base_port(start: int) -> int:
    """First base port >= start with base, base+1 and base+2 free on 127.0.0.1."""
    import socket

    def free(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) != 0

    port = start
    while not all(free(p) for p in (port, port + 1, port + 2)):
        port += 10
    return port


def _wait_ready_line(log: Path, timeout_s: float) -> dict | None:
    """The worker's "worker ready" log record, polled every 5 ms; None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            if "worker ready" in line:
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return {}
        time.sleep(0.005)
    return None


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


def measure_worker(starts: int) -> dict:
    """Spawn-to-ready over several starts, then peak RSS after serving single and batched jobs."""
    import redis

    stack_mod = _stack_module()
    config = stack_mod.StackConfig(
        run_dir=ROOT / ".test-run" / "bench-model", port=free_base_port(19100), workers=1, env={"BACKEND": "litert"}
    )
    stack = stack_mod.Stack(config)
    stack.down()
    try:
        stack.start("redis")
        ready: list[dict] = []
        for n in range(starts):
            if n:
                stack.stop("worker-1")
            spawned = time.monotonic()
            stack.start("worker-1", wait=False)
            line = _wait_ready_line(stack.log_path("worker-1"), 60)
            if line is None:
                return {"error": f"worker not ready in 60 s; read {stack.log_path('worker-1')}"}
            ready.append(
                {"spawn_to_ready_s": round(time.monotonic() - spawned, 3), "logged_startup_s": line.get("startup_s")}
            )
        client = redis.Redis.from_url(config.redis_url)
        tensors = golden_tensors()
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

"""Figures both benchmarks compute and print: percentiles, timing loops, tables, result files."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sample:
    """One request of a load generator."""

    started: float  # time.monotonic()
    latency_s: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    timings: dict | None = None  # the API's timings_ms (the low-overhead generator parses them)
    batch_size: int | None = None


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


def process_tree(pid: int) -> list[int]:
    """A process and every descendant (gunicorn's and nginx's workers, a server's children); [] once gone."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds_of(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these processes so far (one that has gone counts nothing)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def peak_rss_mb(pids: Sequence[int]) -> float:
    """The processes' peak RSS (VmHWM) summed, in MB: pages they share count once per process."""
    return round(sum(proc_status_kb(pid, "VmHWM") for pid in pids) / 1024, 1)


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

"""``make loadtest``: locust headless against a stack on this machine, with pass/fail limits.

LOCUST_HOST (default: start our own stack like ``make bench``) must be a
loopback URL. Users, spawn rate and duration come from LOCUST_USERS (16),
LOCUST_SPAWN_RATE (8) and LOCUST_DURATION (30s). CSV and HTML reports go to
loadtest/results/. Exits non-zero when the failure ratio exceeds
LOCUST_MAX_FAILURE_RATIO (0.01) or the overall p95 exceeds LOCUST_MAX_P95_MS (1000).
"""

from __future__ import annotations

import csv
import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from loadtest import images
from loadtest.bench import VENV_BIN, own_stack

HERE = Path(__file__).resolve().parent


def loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def aggregated(stats_csv: Path) -> dict[str, float]:
    """Requests, failures and p95 (ms) of locust's 'Aggregated' row."""
    with stats_csv.open(newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    requests, failures = int(row["Request Count"]), int(row["Failure Count"])
    p95 = float(row["95%"]) if row["95%"] not in ("", "N/A") else 0.0
    return {"requests": requests, "failures": failures, "failure_ratio": failures / max(requests, 1), "p95_ms": p95}


def run_locust(host: str, out_dir: Path) -> Path:
    env = os.environ
    prefix = out_dir / f"locust-{time.strftime('%Y%m%d-%H%M%S')}"
    duration = env.get("LOCUST_DURATION", "30s")
    argv = [
        str(VENV_BIN / "locust"),
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "--only-summary",
        "-u",
        env.get("LOCUST_USERS", "16"),
        "-r",
        env.get("LOCUST_SPAWN_RATE", "8"),
        "-t",
        duration,
        "--stop-timeout",
        "15",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "--exit-code-on-error",
        "0",
    ]
    subprocess.run(argv, check=True, timeout=_seconds(duration) + 180)
    return Path(f"{prefix}_stats.csv")


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]] if duration[-1] in units else int(duration)


def main() -> int:
    out_dir = Path(os.environ.get("LOCUST_OUT_DIR", HERE / "results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    max_failure_ratio = float(os.environ.get("LOCUST_MAX_FAILURE_RATIO", "0.01"))
    max_p95_ms = float(os.environ.get("LOCUST_MAX_P95_MS", "1000"))
    images.photo_set(int(os.environ.get("LOCUST_IMAGES", "24")))  # generate before the clock starts
    host = os.environ.get("LOCUST_HOST", "")
    stack = None
    if host and not loopback(host):
        print(f"LOCUST_HOST={host} is not a loopback address; load tests only target this machine", file=sys.stderr)
        return 2
    if not host:
        stack = own_stack("loadtest", 19300)
        stack.up()
        host = stack.config.url
    try:
        stats = aggregated(run_locust(host, out_dir))
    finally:
        if stack is not None:
            stack.down()
    ok = stats["failure_ratio"] <= max_failure_ratio and stats["p95_ms"] <= max_p95_ms
    print(
        f"locust against {host}: {stats['requests']} requests, failure ratio {stats['failure_ratio']:.4f} "
        f"(limit {max_failure_ratio}), p95 {stats['p95_ms']:.0f} ms (limit {max_p95_ms:.0f}) -> "
        f"{'PASS' if ok else 'FAIL'}; reports in {out_dir}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

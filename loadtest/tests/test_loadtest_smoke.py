"""`make loadtest` for a few seconds: locust really drives our own stack and writes its reports."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.run_locust"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.integration
@pytest.mark.slow
def test_short_locust_run_passes_and_writes_reports(tmp_path: Path) -> None:
    proc = _run(
        {
            "LOCUST_DURATION": "5s",
            "LOCUST_USERS": "4",
            "LOCUST_SPAWN_RATE": "4",
            "LOCUST_IMAGES": "8",
            "LOCUST_MAX_P95_MS": "5000",
            "LOCUST_OUT_DIR": str(tmp_path),
        }
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PASS" in proc.stdout
    (stats,) = tmp_path.glob("locust-*_stats.csv")
    rows = {r["Name"]: r for r in csv.DictReader(stats.open(newline=""))}
    assert int(rows["POST /api/v1/predictions"]["Request Count"]) > 0
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert list(tmp_path.glob("locust-*.html"))


def test_refuses_a_host_off_this_machine(tmp_path: Path) -> None:
    proc = _run({"LOCUST_HOST": "http://10.1.2.3:8080", "LOCUST_OUT_DIR": str(tmp_path)}, timeout=60)
    assert proc.returncode == 2
    assert "not a loopback address" in proc.stderr
    assert not list(tmp_path.glob("locust-*"))

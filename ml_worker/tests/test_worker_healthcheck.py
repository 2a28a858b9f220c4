"""``python -m ml_worker.healthcheck`` (the worker container's healthcheck) against a real Redis
and a real worker (the worker code on a thread of this process, on this host)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from ml_worker.healthcheck import fresh_heartbeat
from scripts.ports import unused_port


def run_check(redis_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": redis_url}
    argv = [sys.executable, "-m", "ml_worker.healthcheck"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)


def test_healthy_while_the_worker_on_this_host_beats(redis_server, worker) -> None:
    result = run_check(redis_server.url)
    assert result.returncode == 0, result.stderr


def test_a_heartbeat_from_another_host_does_not_count(redis_db, worker) -> None:
    assert fresh_heartbeat(redis_db, socket.gethostname(), stale_s=5.0)
    assert not fresh_heartbeat(redis_db, "another-container", stale_s=5.0)


def test_unhealthy_once_the_worker_stops(redis_server, worker) -> None:
    worker.stop()
    result = run_check(redis_server.url)
    assert result.returncode == 1
    assert "no heartbeat from" in result.stderr


def test_unhealthy_when_redis_does_not_answer() -> None:
    result = run_check(f"redis://127.0.0.1:{unused_port()}/0")
    assert result.returncode == 1
    assert "did not answer" in result.stderr

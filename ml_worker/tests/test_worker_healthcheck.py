"""``python -m ml_worker.healthcheck`` (the worker container's healthcheck) against a real Redis and worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import redis

from ml_worker.healthcheck import fresh_heartbeat

pytestmark = pytest.mark.integration


def run_check(redis_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "ml_worker.healthcheck"], env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip


@pytest.fixture(scope="module")
def redis_and_worker(stack_factory):
    """The queue Redis and one worker only: the check needs nothing else."""
    stack = stack_factory("worker-healthcheck", up=False)
    stack.start("redis-queue")  # all a worker talks to
    stack.start("worker-1")
    return stack


def test_healthy_while_the_worker_on_this_host_beats(redis_and_worker) -> None:
    result = run_check(redis_and_worker.redis_url("queue"))
    assert result.returncode == 0, result.stderr


def test_a_heartbeat_from_another_host_does_not_count(redis_and_worker) -> None:
    client = redis.Redis.from_url(redis_and_worker.redis_url("queue"))
    assert fresh_heartbeat(client, socket.gethostname(), stale_s=5.0)
    assert not fresh_heartbeat(client, "another-container", stale_s=5.0)


def test_unhealthy_once_the_worker_stops(redis_and_worker) -> None:
    redis_and_worker.stop("worker-1")
    result = run_check(redis_and_worker.redis_url("queue"))
    assert result.returncode == 1
    assert "no heartbeat from" in result.stderr


def test_unhealthy_when_redis_does_not_answer() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    result = run_check(f"redis://127.0.0.1:{closed_port}/0")
    assert result.returncode == 1
    assert "did not answer" in result.stderr

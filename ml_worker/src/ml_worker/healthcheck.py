"""Container health of a worker: ``python -m ml_worker.healthcheck`` exits 0 while
a worker on this host has a fresh heartbeat in Redis, 1 otherwise.

Docker runs the check inside the worker's own container, so "this host" is that
container: every heartbeat record carries the worker's hostname (the container
id), which tells the replicas of ``--scale worker=N`` apart without a fixed
WORKER_ID. A worker beats only once its model is loaded and warmed up, so
healthy means able to take jobs. TensorFlow-free, like the contract it reads.
"""

from __future__ import annotations

import socket
import sys

import redis

from imgclf_contract import redis_client
from imgclf_contract.liveness import live_workers
from ml_worker.settings import WorkerSettings

TIMEOUT_S = 3.0


def fresh_heartbeat(client: redis.Redis, host: str, stale_s: float) -> bool:
    """True when some worker on ``host`` beat within the last ``stale_s`` seconds."""
    return any(record.get("host") == host for record in live_workers(client, stale_s))


def main() -> int:
    settings = WorkerSettings.from_env()
    client = redis_client.connect(
        settings, settings.queue_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
    )
    host = socket.gethostname()
    try:
        healthy = fresh_heartbeat(client, host, settings.heartbeat_stale_s)
    except redis.RedisError as exc:
        print(f"unhealthy: Redis at {settings.queue_url} did not answer: {exc}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"unhealthy: no heartbeat from {host} in the last {settings.heartbeat_stale_s:g} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The multi-host cluster: network namespaces as hosts (deploy/multihost/hosts.py) running
the same services `make up` runs, started through scripts/stack.py with each host's own
address, state directory and mount namespace.

Hosts on 198.19.50.0/24: client .2 (the test's load generator), redis .10, web .20
(nginx + API), trainer .25 (custom heads, published into Redis), worker-a .31 and
worker-b .32; worker-c .33 joins during the tests.
Every service listens on its standard port (8080, 8000, 6379) of its own host's address.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field

import redis

from deploy.multihost import hosts as hostlib
from scripts.stack import REDIS_ROLES, ROOT, Stack, StackConfig
from testsupport.faults import FAST_ENV

REDIS_SERVICES = tuple(service for service, _offset, _conf in REDIS_ROLES.values())
STATE_ROOT = ROOT / ".test-run" / f"multihost-{os.getpid()}"
NGINX_PORT, API_PORT, REDIS_PORT = 8080, 8000, 6379
WORKER_HOSTS = {"worker-a": (31, "worker-1"), "worker-b": (32, "worker-2")}
LATE_WORKER_HOST = ("worker-c", 33, "worker-3")
REDIS_OCTET, WEB_OCTET, TRAINER_OCTET, CLIENT_OCTET = 10, 20, 25, 2


def why_not_runnable() -> str:
    """Empty when this machine can run the test, else the reason to skip it."""
    if os.geteuid() != 0:
        return "needs root: it creates network namespaces, veth links and mounts (CI runs as root)"
    if not shutil.which("ip") or not shutil.which("unshare"):
        return "needs iproute2 and util-linux (make system-deps installs them)"
    return ""


@dataclass
class Cluster:
    network: hostlib.Network
    env: dict[str, str]
    stacks: dict[str, Stack] = field(default_factory=dict)  # host name -> its services

    def host(self, name: str) -> hostlib.Host:
        return self.network.hosts[name]

    @property
    def url(self) -> str:
        return f"http://{self.host('web').address}:{NGINX_PORT}"

    def redis(self, role: str = "queue") -> redis.Redis:
        """A client of the redis host's Redis of that role (the queue: jobs, heartbeats), as its admin user."""
        return self.stacks["redis"].redis(role, socket_timeout=2)

    def add_host(self, name: str, octet: int) -> hostlib.Host:
        host = self.network.add_host(name, octet)
        config = StackConfig(
            run_dir=host.state_dir,
            port=NGINX_PORT,
            api_port=API_PORT,
            redis_port=REDIS_PORT,
            host=host.address,
            env=self.env,
            launcher=host.launcher(ROOT),
            redis_host=f"{hostlib.SUBNET}.{REDIS_OCTET}",
        )
        self.stacks[name] = Stack(config)
        return host

    def start(self, host_name: str, *services: str) -> None:
        """Start services on a host (from inside its network) and wait until each is ready."""
        with hostlib.entered(self.host(host_name).netns):
            for service in services:
                self.stacks[host_name].start(service)

    def pid(self, host_name: str, service: str) -> int | None:
        return self.stacks[host_name].pid(service)

    def add_worker_host(self, name: str, octet: int, service: str) -> None:
        self.add_host(name, octet)
        self.start(name, service)


def build(network: hostlib.Network) -> Cluster:
    """Create the hosts and start every service; the caller destroys ``network`` in any case."""
    # A Redis reachable from other hosts needs a password (its protected mode refuses them otherwise);
    # nginx reaches the API from the web host's address, not from loopback.
    env = {
        **FAST_ENV,
        "REDIS_PASSWORD": secrets.token_urlsafe(16),
        "TRUSTED_PROXIES": f"{hostlib.SUBNET}.{WEB_OCTET}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    cluster = Cluster(network, env)
    network.create()
    cluster.add_host("client", CLIENT_OCTET)
    cluster.add_host("redis", REDIS_OCTET)
    cluster.add_host("web", WEB_OCTET)
    cluster.add_host("trainer", TRAINER_OCTET)
    cluster.start("redis", *REDIS_SERVICES)  # the store, the queue and the cache
    cluster.start("trainer", "trainer")  # reaches Redis only; workers read the heads it publishes
    for name, (octet, service) in WORKER_HOSTS.items():
        cluster.add_worker_host(name, octet, service)
    cluster.start("web", "api", "nginx")  # nginx is ready once /api/v1/ready sees a live worker
    return cluster

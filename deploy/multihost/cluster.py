"""The multi-host cluster: network namespaces as hosts (deploy/multihost/hosts.py) running
the same services `make up` runs, started through scripts/stack.py with each host's own
address, state directory and mount namespace.

Hosts on 198.19.50.0/24: client .2 (the test's load generator), redis .10, web .20
(nginx + API), worker-a .31 and worker-b .32; worker-c .33 joins during the tests.
Every service listens on its standard port (8080, 8000, 6379) of its own host's address.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).parent))

import hosts as hostlib  # noqa: E402
from stack import Stack, StackConfig  # noqa: E402

from testsupport import faults as fl  # noqa: E402

STATE_ROOT = ROOT / ".test-run" / f"multihost-{os.getpid()}"
NGINX_PORT, API_PORT, REDIS_PORT = 8080, 8000, 6379
WORKER_HOSTS = {"worker-a": (31, "worker-1"), "worker-b": (32, "worker-2")}
LATE_WORKER_HOST = ("worker-c", 33, "worker-3")
REDIS_OCTET, WEB_OCTET, CLIENT_OCTET = 10, 20, 2


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

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.env['REDIS_PASSWORD']}@{self.host('redis').address}:{REDIS_PORT}/0"

    def add_host(self, name: str, octet: int) -> hostlib.Host:
        host = self.network.add_host(name, octet)
        config = StackConfig(run_dir=host.state_dir, port=NGINX_PORT, api_port=API_PORT, redis_port=REDIS_PORT,
                             host=host.address, env=self.env, launcher=host.launcher(ROOT),
                             redis_host=f"{hostlib.SUBNET}.{REDIS_OCTET}")  # fmt: skip
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
    env = {**fl.FAST_ENV, "REDIS_PASSWORD": secrets.token_urlsafe(16),
           "TRUSTED_PROXIES": f"{hostlib.SUBNET}.{WEB_OCTET}", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    cluster = Cluster(network, env)
    network.create()
    cluster.add_host("client", CLIENT_OCTET)
    cluster.add_host("redis", REDIS_OCTET)
    cluster.add_host("web", WEB_OCTET)
    cluster.start("redis", "redis")
    for name, (octet, service) in WORKER_HOSTS.items():
        cluster.add_worker_host(name, octet, service)
    cluster.start("web", "api", "nginx")  # nginx is ready once /api/v1/ready sees a live worker
    return cluster

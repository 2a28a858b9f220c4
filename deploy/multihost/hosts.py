"""Network namespaces that act as separate hosts, for the multi-host test.

A "switch" namespace holds a bridge; every host namespace gets one veth (``eth0``) whose
peer is a port of that bridge, and an address from 198.19.50.0/24 (inside 198.18.0.0/15,
reserved for network testing). Nothing is added to the namespace this process runs in, so
the addresses exist only inside the namespaces. Every service on a host also runs in its
own mount and UTS namespace: the host's name, a private ``/tmp`` and ``/dev/shm``, and the
whole file system read-only except the host's state directory.

Namespace names carry this process's pid, so a later run can remove what a killed run
left behind (``reap_abandoned``) and concurrent runs never meet.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NAME_PREFIX = "imgclf-mh"
SUBNET = "198.19.50"  # /24; the bridge has no address, only the hosts do
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> str:
    """Run ``ip`` and return its output; a failure raises with ip's own message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _setns(path: str | int) -> None:
    fd = path if isinstance(path, int) else os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        if not isinstance(path, int):
            os.close(fd)


@contextlib.contextmanager
def entered(netns: str) -> Iterator[None]:
    """Run this thread in ``netns`` for the block: sockets it opens, processes it starts
    and threads it creates there belong to that host's network."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(f"/run/netns/{netns}")
        yield
    finally:
        _setns(home)
        os.close(home)


def netns_pids(netns: str) -> list[int]:
    return [int(pid) for pid in ip("netns", "pids", netns).split()]


def _kill_and_delete(netns: str) -> None:
    """SIGKILL whatever runs in the namespace (only our services can), then delete it."""
    with contextlib.suppress(RuntimeError):
        for pid in netns_pids(netns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(RuntimeError):
        ip("netns", "delete", netns)


def our_namespaces(tag: str | None = None) -> list[str]:
    """Namespaces made by this test (all runs, or the run with this tag)."""
    names = [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]
    prefix = f"{NAME_PREFIX}{tag}-" if tag else NAME_PREFIX
    return [name for name in names if name.startswith(prefix)]


def reap_abandoned() -> None:
    """Remove the namespaces (and their processes) of earlier runs that died uncleanly."""
    for name in our_namespaces():
        match = re.match(rf"{NAME_PREFIX}(\d+)-", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _kill_and_delete(name)


@dataclass
class Host:
    name: str
    netns: str
    address: str
    port: str  # its bridge port in the switch namespace
    state_dir: Path

    def launcher(self, checkout: Path) -> tuple[str, ...]:
        """argv prefix that runs a command as this host would: its own hostname, a private /tmp
        and /dev/shm, and the whole file system read-only except this host's state directory
        (inside ``checkout``). The checkout is bound onto itself first, so it stays visible
        when it lives under /tmp (as a CI clone may)."""
        script = (
            f"hostname {self.name}; cd {checkout}; "
            "mount -t tmpfs -o mode=1777 tmpfs /tmp; mount -t tmpfs -o mode=1777 tmpfs /dev/shm; "
            f"mkdir -p {checkout}; mount --no-canonicalize --bind . {checkout}; "  # ".": the checkout on disk
            f"mount --bind {self.state_dir} {self.state_dir}; "
            f"mount -o remount,bind,ro {checkout}; mount -o remount,bind,ro /; "  # this namespace's mounts only
            f'cd {checkout}; exec "$@"'
        )
        return ("unshare", "--mount", "--uts", "--propagation", "private", "--", "sh", "-ec", script, self.name)

    def run(self, checkout: Path, argv: list[str]) -> subprocess.CompletedProcess:
        """Run one command on this host, the way its services run."""
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *self.launcher(checkout), *argv],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def kill_all(self) -> list[int]:
        """kill -9 every process on this host, as a crash of the machine would."""
        pids = netns_pids(self.netns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids


class Network:
    """One bridge and any number of hosts on it; ``destroy`` removes all of it."""

    def __init__(self, state_root: Path) -> None:
        self.tag = str(os.getpid())
        self.state_root = state_root
        self.switch = f"{NAME_PREFIX}{self.tag}-switch"
        self.hosts: dict[str, Host] = {}

    def create(self) -> None:
        ip("netns", "add", self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, name: str, octet: int) -> Host:
        netns = f"{NAME_PREFIX}{self.tag}-{name}"
        host = Host(name, netns, f"{SUBNET}.{octet}", f"port{octet}", self.state_root / name)
        host.state_dir.mkdir(parents=True, exist_ok=True)
        ip("netns", "add", netns)
        self.hosts[name] = host
        ip("link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", host.port, "netns", self.switch)
        ip("-n", self.switch, "link", "set", host.port, "master", "br0", "up")
        ip("-n", netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        return host

    def set_link(self, host: Host, up: bool) -> None:
        """Cut (or restore) a host's cable: its bridge port drops every frame while down."""
        ip("-n", self.switch, "link", "set", host.port, "up" if up else "down")

    def set_route(self, host: Host, peer: Host, reachable: bool) -> None:
        """Cut (or restore) one path only: ``host`` loses its route to ``peer``."""
        ip("-n", host.netns, "route", "add" if not reachable else "delete", "blackhole", f"{peer.address}/32")

    def destroy(self) -> None:
        for host in self.hosts.values():
            _kill_and_delete(host.netns)
        _kill_and_delete(self.switch)

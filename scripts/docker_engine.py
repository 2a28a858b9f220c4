"""A Docker engine and the Debian base image for ``make test-compose``, on a machine that
may have neither: installs Debian's engine when missing, starts ``dockerd`` when none
answers (and later stops only the one it started), and makes ``debian:bookworm-slim``
with mmdebstrap when no registry can give it.

The engine's bridge and address pools lie in 198.18.0.0/15, the range reserved for
network testing, so containers never take private-range addresses. Debian's own client
(``/usr/bin/docker``, 20.10, BuildKit built in) is called explicitly: another ``docker``
earlier on PATH may lack buildx.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
BASE_IMAGE = "debian:bookworm-slim"
# What each command needs from Debian, installed when the command is missing.
PACKAGES = {
    DOCKER: "docker.io",
    DOCKERD: "docker.io",
    "/usr/bin/containerd": "containerd",
    "/usr/sbin/runc": "runc",
    "/usr/bin/docker-compose": "docker-compose",
    "/usr/bin/mmdebstrap": "mmdebstrap",
}
ENGINE_START_TIMEOUT_S = 60.0
ENGINE_STOP_TIMEOUT_S = 30.0
# The base as Docker's debian:bookworm-slim has it: minbase, bookworm + updates + security,
# no manual pages, documentation (copyrights kept) or translations.
DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
)
# Extra CA certificates of this machine (e.g. an HTTPS proxy's): put into the stand-in
# base only, where the images' `ca-certificates` install picks them up. Never into the
# project's Dockerfiles: a user's machine pulls the real base and needs none of this.
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")


class EngineError(RuntimeError):
    """The engine or the base image could not be had; the message says why."""


def install_missing_packages() -> None:
    """apt-get install Debian's engine, compose and mmdebstrap where a command is missing."""
    missing = sorted({package for command, package in PACKAGES.items() if not Path(command).exists()})
    if not missing:
        return
    print(f"installing system packages: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Debian's docker client, output captured as text."""
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=check)


def engine_answers() -> bool:
    try:
        return docker("version", "--format", "{{.Server.Version}}", timeout=15, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@dataclass
class EngineConfig:
    log_file: Path
    bridge_ip: str = "198.19.240.1/24"  # docker0: the default bridge (and build containers)
    address_pool: str = "198.19.244.0/22"  # compose networks, a /26 each
    pool_size: int = 26

    @classmethod
    def from_env(cls, log_file: Path) -> EngineConfig:
        env = os.environ
        return cls(
            log_file=log_file,
            bridge_ip=env.get("DOCKER_BRIDGE_IP", cls.bridge_ip),
            address_pool=env.get("DOCKER_ADDRESS_POOL", cls.address_pool),
            pool_size=int(env.get("DOCKER_POOL_SIZE", str(cls.pool_size))),
        )

    def argv(self) -> list[str]:
        return [
            DOCKERD,
            "--bip",
            self.bridge_ip,
            "--default-address-pool",
            f"base={self.address_pool},size={self.pool_size}",
        ]


IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def forward_policy() -> str | None:
    """The policy of iptables' FORWARD chain (ACCEPT, DROP), None without iptables."""
    try:
        rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    first = rules.stdout.split("\n", 1)[0].split()
    return first[2] if rules.returncode == 0 and first[:2] == ["-P", "FORWARD"] else None


class Engine:
    """The engine that answers, or one started here; stop() stops only the latter.

    A dockerd that finds IP forwarding off turns it on and sets iptables' FORWARD policy to
    DROP, for the whole host; stop() puts both back as they were before it started.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.process: subprocess.Popen | None = None
        self.host_forwarding: tuple[str, str | None] | None = None  # (ip_forward, FORWARD policy) before

    def ensure(self) -> bool:
        """True when this call started dockerd (it was not running)."""
        if engine_answers():
            return False
        self.config.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.host_forwarding = (IP_FORWARD.read_text().strip(), forward_policy())
        with self.config.log_file.open("ab") as log:
            self.process = subprocess.Popen(self.config.argv(), stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
        while not engine_answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"dockerd did not start; see {self.config.log_file}")
            time.sleep(0.5)
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=ENGINE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        self._restore_host_forwarding()

    def _restore_host_forwarding(self) -> None:
        if self.host_forwarding is None:
            return
        ip_forward, policy = self.host_forwarding
        if policy is not None and forward_policy() != policy:
            subprocess.run(["iptables", "-P", "FORWARD", policy], check=True, timeout=30)
        IP_FORWARD.write_text(ip_forward + "\n")
        self.host_forwarding = None


def base_image_exists() -> bool:
    return docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0


def mmdebstrap_argv() -> list[str]:
    hooks = [f'mkdir -p "$1{HOST_EXTRA_CAS}"', 'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*']
    if HOST_EXTRA_CAS.is_dir() and any(HOST_EXTRA_CAS.iterdir()):
        hooks.insert(1, f"copy-in {HOST_EXTRA_CAS}/. {HOST_EXTRA_CAS}")
    return [
        "mmdebstrap",
        "--variant=minbase",
        "--quiet",
        *(f"--dpkgopt={option}" for option in SLIM_DPKG_OPTIONS),
        *(f"--customize-hook={hook}" for hook in hooks),
        "bookworm",
        "-",
        *DEBIAN_SOURCES,
    ]


def build_base_image() -> None:
    """mmdebstrap's tarball of Debian 12, imported as debian:bookworm-slim."""
    if shutil.which("mmdebstrap") is None:
        raise EngineError("mmdebstrap is not installed")
    bootstrap = subprocess.Popen(mmdebstrap_argv(), stdout=subprocess.PIPE)
    try:
        imported = subprocess.run(
            [DOCKER, "import", "--change", 'CMD ["bash"]', "-", BASE_IMAGE],
            stdin=bootstrap.stdout,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        bootstrap.stdout.close()
        bootstrap.wait(timeout=60)
    if bootstrap.returncode != 0 or imported.returncode != 0:
        docker("image", "rm", "--force", BASE_IMAGE, check=False)  # never keep a partial base
        raise EngineError(f"building {BASE_IMAGE} failed (mmdebstrap {bootstrap.returncode}): {imported.stderr}")


def docker_root_bytes() -> int:
    """Disk used under Docker's root directory (one filesystem: mounted layers are not counted twice)."""
    root = docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    used = subprocess.run(["du", "-sxb", root], capture_output=True, text=True, check=True, timeout=300)
    return int(used.stdout.split()[0])


def prune_build_leftovers(keep_cache_bytes: int) -> None:
    """Drop the images earlier builds left untagged and the least recently used build cache
    beyond keep_cache_bytes, so repeated runs on one machine do not fill its disk."""
    docker("image", "prune", "--force", timeout=300)
    docker("builder", "prune", "--force", "--keep-storage", str(keep_cache_bytes), timeout=300)

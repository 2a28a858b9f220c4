"""Start, stop and inspect the whole stack on this machine (``make up/down/status``).

Redis, the inference worker(s), the API (gunicorn) and nginx run in the
background, each with a pid file under ``<run dir>/`` and a log under
``<run dir>/logs/``. ``up`` starts whatever is not running (so a second ``up``
is a quick no-op that also revives dead services) and waits for readiness;
``down`` stops exactly the processes whose pid files it wrote. The test suites
drive the same class on other ports and run directories.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import hashlib
import hmac
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
NGINX_DIR = ROOT / "nginx"
START_TIMEOUT_S = 60.0
OWNER_ONLY = 0o077  # umask for everything the stack and its services write

# Three Redis roles (contract/src/imgclf_contract/keys.py): the store keeps feedback on disk and refuses
# writes when full (the API answers 507); the queue (crops of uploads, replies, heartbeats,
# rate limits) never touches the disk and refuses new jobs when full (503); the cache alone may
# evict, least recently used first. (service name, port offset from REDIS_PORT, settings)
REDIS_ROLES: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "store": ("redis", 0, ("appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction")),
    "queue": ("redis-queue", 1, ("appendonly no", "maxmemory-policy noeviction")),
    "cache": ("redis-cache", 2, ("appendonly no", "maxmemory-policy allkeys-lru")),
}
REDIS_MAXMEMORY = {
    "store": ("REDIS_MAXMEMORY", "1gb"),
    "queue": ("REDIS_QUEUE_MAXMEMORY", "256mb"),
    "cache": ("REDIS_CACHE_MAXMEMORY", "64mb"),
}
_MAX_SOCKET_PATH = 100  # a Unix socket's address (sun_path) holds 108 bytes
# Redis ACL command rules: data commands on the service's own keys, nothing that can flush,
# reconfigure, list keys or kill clients (@dangerous).
_DATA_COMMANDS = "-@all +@read +@write +@keyspace +@transaction +@connection +time"


class StackError(RuntimeError):
    """A service did not come up; the message names it and its log."""


@dataclass
class StackConfig:
    run_dir: Path = ROOT / ".run"
    port: int = 8080
    api_port: int = 0  # 0: port + 1
    redis_port: int = 0  # 0: port + 2
    workers: int = 1
    trainer: bool = False  # the training process (imports TensorFlow: ~500 MB, only where custom models are trained)
    env: dict[str, str] = field(default_factory=dict)  # extra settings for API and workers
    worker_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per worker ("worker-1"), over env
    host: str = "127.0.0.1"  # the address every service here listens on and is reached at
    redis_host: str = ""  # empty: host (the multi-host test puts Redis on another "host")
    launcher: tuple[str, ...] = ()  # argv prefix for every service, e.g. to enter its own mount namespace
    worker_argv: dict[str, list[str]] = field(default_factory=dict)  # per worker: a command instead of ml-worker

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).resolve()
        self.api_port = self.api_port or self.port + 1
        self.redis_port = self.redis_port or self.port + 2

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        return cls(
            run_dir=Path(env.get("RUN_DIR", ROOT / ".run")),
            port=int(env.get("PORT", "8080")),
            api_port=int(env.get("API_PORT", "0")),
            redis_port=int(env.get("REDIS_PORT", "0")),
            workers=int(env.get("WORKERS", "1")),
            trainer=env.get("TRAINER", "1") not in ("0", "false", "no", "off"),
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def redis_address(self) -> str:
        return self.redis_host or self.host

    def redis_port_of(self, role: str) -> int:
        """Each Redis role on its own port: REDIS_PORT (the store), then +1 (queue), +2 (cache)."""
        return self.redis_port + REDIS_ROLES[role][1]

    def redis_socket_of(self, role: str) -> Path | None:
        """Where a role's Redis also listens on a Unix socket, which the services here use: on
        loopback TCP every 150 KB job costs the API, the worker and Redis ~0.2 ms more CPU.
        None when Redis is on another host, or when the path is too long for a socket address
        (108 bytes, with a margin): then everything goes over TCP."""
        path = self.run_dir / REDIS_ROLES[role][0] / "redis.sock"
        return path if not self.redis_host and len(str(path)) <= _MAX_SOCKET_PATH else None


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a live process: tells a reused pid from ours.

    A zombie counts as gone (and is reaped when it is our child, as in the test fixtures),
    otherwise stop() would wait its whole timeout for a process that has already exited.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return fields[19]


def _nginx_user() -> str:
    """Started as root, nginx's workers would run as `nobody`, who cannot read a checkout in a
    private (0700) folder nor write the upload temp files under it: run them as the checkout's owner."""
    if os.geteuid() != 0:
        return ""
    owner = pwd.getpwuid(ROOT.stat().st_uid)
    return f" user {owner.pw_name} {grp.getgrgid(owner.pw_gid).gr_name};"


def _quoted(value: str) -> str:
    """A redis.conf string argument: spaces, quotes and backslashes survive."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def _owner_only() -> Iterator[None]:
    """Files and directories made meanwhile (by us or the services we start) are the owner's alone."""
    previous = os.umask(OWNER_ONLY)
    try:
        yield
    finally:
        os.umask(previous)


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.logs = config.run_dir / "logs"
        self._log_starts: dict[str, int] = {}  # where each service's current run begins in its log

    # -- bookkeeping -------------------------------------------------------
    def services(self) -> list[str]:
        redis_services = [service for service, _offset, _conf in REDIS_ROLES.values()]
        workers = [f"worker-{i}" for i in range(1, self.config.workers + 1)]
        return [*redis_services, *workers, *(["trainer"] if self.config.trainer else []), "api", "nginx"]

    def _pidfile(self, name: str) -> Path:
        return self.config.run_dir / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The pid of our running process for this service, else None."""
        try:
            pid_text, started = self._pidfile(name).read_text().split()
        except (OSError, ValueError):
            return None
        pid = int(pid_text)
        return pid if _start_time(pid) == started else None

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def current_log(self, name: str) -> str:
        """The log of the service's current run (logs are appended to across restarts)."""
        with open(self.log_path(name), errors="replace") as log:
            log.seek(self._log_starts.get(name, 0))
            return log.read()

    def _open_log(self, name: str) -> TextIO:
        """Append (a crash's last words survive a restart) after a line marking this start."""
        log = open(self.log_path(name), "a")  # noqa: SIM115 - handed to Popen, closed by the caller
        self._log_starts[name] = log.tell()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        log.write(json.dumps({"ts": stamp + "Z", "level": "INFO", "logger": "stack", "msg": f"starting {name}"}) + "\n")
        log.flush()
        return log

    def worker_id(self, name: str) -> str:
        """The consumer name and heartbeat id of a worker service ("worker-1@8080")."""
        return f"{name}@{self.config.port}"

    def redis(self, role: str = "store", socket_timeout: float = 1.0):
        """A client of one of this stack's Redis roles, as `admin` (for tools and tests)."""
        import redis

        return redis.Redis.from_url(self.redis_url(role), socket_timeout=socket_timeout)

    def service_env(self) -> dict[str, str]:
        """The API's environment: every Redis role as the `api` user (a worker's is narrower)."""
        env = {**os.environ, **self.config.env}
        env.update(
            REDIS_URL=self._url("store", "api"),
            QUEUE_REDIS_URL=self._url("queue", "api"),
            CACHE_REDIS_URL=self._url("cache", "api"),
            REDIS_PASSWORD=self.redis_password("api"),
        )
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    # -- Redis credentials -------------------------------------------------------
    def _redis_secret(self) -> str:
        """REDIS_PASSWORD when given (so stacks on several hosts agree), else a secret generated
        once per run directory and kept owner-only. No service ever receives it."""
        given = {**os.environ, **self.config.env}.get("REDIS_PASSWORD", "")
        if given:
            return given
        path = self.config.run_dir / "secrets" / "redis.secret"
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # a concurrent `up` wrote it first
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def redis_password(self, user: str) -> str:
        """Each Redis user's password, derived from the secret: knowing one opens no other."""
        return hmac.new(self._redis_secret().encode(), user.encode(), hashlib.sha256).hexdigest()

    def _url(self, role: str, user: str) -> str:
        """A service's URL of a Redis role (the password travels apart, as REDIS_PASSWORD)."""
        socket_path = self.config.redis_socket_of(role)
        if socket_path:
            return f"unix://{user}@{socket_path}?db=0"
        return f"redis://{user}@{self.config.redis_address}:{self.config.redis_port_of(role)}/0"

    def redis_url(self, role: str = "store", user: str = "admin") -> str:
        """A URL with credentials, for tools and tests (admin: every command on every key)."""
        password = self.redis_password(user)
        return f"redis://{user}:{password}@{self.config.redis_address}:{self.config.redis_port_of(role)}/0"

    # -- commands per service ----------------------------------------------
    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        argv, env = self._service_command(name)
        return [*self.config.launcher, *argv], env

    def _service_command(self, name: str) -> tuple[list[str], dict[str, str]]:
        env = self.service_env()
        role = self._redis_role(name)
        if role:
            return ["redis-server", str(self._redis_conf(role))], env
        if name.startswith("worker-"):
            # A worker reaches the queue, and the store only to read custom heads (its ACL says so).
            env.update(
                REDIS_URL=self._url("store", "worker"),
                QUEUE_REDIS_URL=self._url("queue", "worker"),
                CACHE_REDIS_URL="",
                REDIS_PASSWORD=self.redis_password("worker"),
            )
            env.update(self.config.worker_env.get(name, {}), WORKER_ID=self.worker_id(name))
            return self.config.worker_argv.get(name, [str(VENV_BIN / "ml-worker")]), env
        if name == "trainer":
            return [str(VENV_BIN / "python"), "-m", "ml_worker.trainer"], env
        if name == "api":
            metrics_dir = self.config.run_dir / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env.update(
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                API_BIND=f"{self.config.host}:{self.config.api_port}",
                API_CONTROL_SOCKET=str(self.config.run_dir / "api.ctl"),
            )
            env.setdefault("MALLOC_ARENA_MAX", "2")  # many threads decoding images: cap glibc's arenas
            return [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "backend" / "gunicorn.conf.py")], env
        if name == "nginx":
            conf = self._nginx_conf()
            prefix, error_log, directives = str(conf.parent), str(self.logs / "nginx-error.log"), "daemon off;"
            return ["nginx", "-p", prefix, "-e", error_log, "-c", str(conf), "-g", directives + _nginx_user()], env
        raise KeyError(name)

    @staticmethod
    def _redis_role(name: str) -> str | None:
        return next((role for role, (service, _o, _c) in REDIS_ROLES.items() if service == name), None)

    def _redis_conf(self, role: str) -> Path:
        service, _offset, settings = REDIS_ROLES[role]
        data = self.config.run_dir / service
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        variable, default = REDIS_MAXMEMORY[role]
        lines = [
            f"port {self.config.redis_port_of(role)}",
            f"bind {self.config.host}",
            *self._redis_socket_lines(role),
            f"dir {data}",
            *settings,
            f"maxmemory {self.service_env().get(variable) or default}",
            'save ""',  # no snapshots: the store's durability comes from the AOF alone
            "hz 100",  # blocking-read timeouts (the worker's batch window) fire within 10 ms, not 100
            "protected-mode yes",
            *self._redis_acl(role),
        ]
        conf = data / "redis.conf"
        conf.touch(mode=0o600)
        conf.chmod(0o600)  # it holds the passwords
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def _redis_socket_lines(self, role: str) -> list[str]:
        socket_path = self.config.redis_socket_of(role)
        return [f"unixsocket {socket_path}", "unixsocketperm 700"] if socket_path else []

    def _redis_acl(self, role: str) -> list[str]:
        """No anonymous access; `api` gets data commands on our keys; `worker` just the job streams,
        serving sets, replies, heartbeats and model records on the queue, and reading custom heads
        on the store; `admin` is for tools and tests. The trainer runs as `api`."""
        from imgclf_contract import keys

        acl = [
            # Off: no connection is ever authenticated as `default`. Its permissions still matter:
            # Redis 7.0 replays the AOF as `default`, and a MULTI/EXEC it may not run is dropped.
            "user default off ~* &* +@all",
            f"user admin on {_quoted('>' + self.redis_password('admin'))} ~* &* +@all",
            f"user api on {_quoted('>' + self.redis_password('api'))} ~{keys.PREFIX}:* resetchannels "
            f"{_DATA_COMMANDS} {'+@scripting ' if role == 'queue' else ''}-@dangerous",
        ]
        worker = f"user worker on {_quoted('>' + self.redis_password('worker'))} resetchannels"
        if role == "queue":
            patterns = " ".join(f"~{pattern}" for pattern in keys.WORKER_KEY_PATTERNS)
            acl.append(f"{worker} {patterns} {_DATA_COMMANDS} -@dangerous")
        if role == "store":  # custom heads, read-only: HGETALL and the connection's own commands
            patterns = " ".join(f"%R~{pattern}" for pattern in keys.WORKER_STORE_READ_PATTERNS)
            acl.append(f"{worker} {patterns} -@all +@connection +hgetall -@dangerous")
        return acl

    def _nginx_conf(self) -> Path:
        from api.settings import ApiSettings

        settings = ApiSettings.from_env(self.service_env())
        conf_dir = self.config.run_dir / "nginx"
        (conf_dir / "servers").mkdir(parents=True, exist_ok=True)
        values = {
            "NGINX_PREFIX": str(conf_dir),
            "NGINX_CONF_DIR": str(conf_dir),
            "NGINX_LOG_DIR": str(self.logs),
            "NGINX_MIME_TYPES": "/etc/nginx/mime.types",
            "NGINX_LISTEN": f"{self.config.host}:{self.config.port}",
            "API_UPSTREAM": f"{self.config.host}:{self.config.api_port}",
            "FRONTEND_ROOT": str(ROOT / "frontend"),
            "MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
            "CLIENT_MAX_BODY_SIZE": str(settings.max_upload_bytes + 1024 * 1024),
            "PROXY_TIMEOUT": f"{int(settings.request_timeout_s) + 5}s",
            "API_MAX_CONNS": str(settings.api_processes * settings.api_threads),
        }
        env = self.service_env()
        tls = env.get("TLS_CERT_FILE") and env.get("TLS_KEY_FILE")
        if tls:
            values.update(
                TLS_CERT_FILE=env["TLS_CERT_FILE"],
                TLS_KEY_FILE=env["TLS_KEY_FILE"],
                TLS_LISTEN=f"127.0.0.1:{env.get('TLS_PORT', '8443')}",
            )
        render = {
            "nginx.conf": "nginx.conf.template",
            "locations.conf": "locations.conf.template",
            "servers/http.conf": "server.conf.template",
            **({"servers/tls.conf": "tls.conf.template"} if tls else {}),
        }
        for stale in ("tls.conf", "extra.conf"):
            (conf_dir / "servers" / stale).unlink(missing_ok=True)
        for out, template in render.items():
            text = Template((NGINX_DIR / template).read_text()).safe_substitute(values)
            (conf_dir / out).write_text(text)
        extra = env.get("EXTRA_LISTEN")  # e.g. an address of a test's network namespace
        if extra:
            text = Template((NGINX_DIR / "server.conf.template").read_text())
            (conf_dir / "servers" / "extra.conf").write_text(text.safe_substitute(values, NGINX_LISTEN=extra))
        return conf_dir / "nginx.conf"

    # -- readiness -----------------------------------------------------------
    def _ready(self, name: str) -> bool:
        role = self._redis_role(name)
        if role or name.startswith("worker-"):
            import redis

            try:
                return bool(self.redis(role).ping()) if role else self.worker_live(name)
            except redis.RedisError:
                return False
        if name == "trainer":
            return "trainer ready" in self.log_path(name).read_text(errors="replace")
        if name == "api":
            return _http_ok(f"http://{self.config.host}:{self.config.api_port}/api/v1/health")
        return _http_ok(f"{self.config.url}/api/v1/ready")

    def worker_live(self, name: str) -> bool:
        """Ready once the process we started has a live heartbeat: a worker beats only with its model
        loaded and warmed up (the pid tells it from a killed predecessor's heartbeat, not yet stale)."""
        from imgclf_contract.liveness import live_workers
        from imgclf_contract.settings import SharedSettings

        stale_s = SharedSettings.from_env(self.service_env()).heartbeat_stale_s
        ours = (self.worker_id(name), self.pid(name))
        return any((w["worker_id"], w["pid"]) == ours for w in live_workers(self.redis("queue"), stale_s))

    def wait_ready(self, name: str, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid(name) is None:
                raise StackError(f"{name} exited during start-up; read {self.log_path(name)}")
            if self._ready(name):
                return
            time.sleep(0.1)
        raise StackError(f"{name} did not become ready within {timeout_s:.0f} s; read {self.log_path(name)}")

    # -- lifecycle -------------------------------------------------------------
    def start(self, name: str, wait: bool = True) -> int:
        """Start one service unless it is already running; returns its pid."""
        pid = self.pid(name)
        if pid is None:
            with _owner_only():
                pid = self._spawn(name)
        if wait:
            self.wait_ready(name)
        return pid

    def _spawn(self, name: str) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        argv, env = self._command(name)
        with self._open_log(name) as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        self._pidfile(name).write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        return proc.pid

    def up(self) -> None:
        self.config.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.config.run_dir.chmod(0o700)  # also when an older version made it readable to all
        for stale in self.config.run_dir.rglob("*"):  # files an older version wrote readable to all
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours (nginx's temp files)
                if not stale.is_symlink():
                    stale.chmod(stale.stat().st_mode & ~OWNER_ONLY)
        for name in self.services():
            self.start(name)

    def signal(self, name: str, sig: signal.Signals) -> int:
        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running")
        os.kill(pid, sig)
        return pid

    def stop(self, name: str, timeout_s: float = 20.0) -> None:
        """SIGTERM (graceful), then SIGKILL of the whole process group after timeout_s."""
        pid = self.pid(name)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.pid(name) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.pid(name) is not None:
                with contextlib.suppress(ProcessLookupError):  # it may have exited just now
                    os.killpg(pid, signal.SIGKILL)
        self._pidfile(name).unlink(missing_ok=True)

    def down(self) -> None:
        for name in reversed(self._known_services()):
            self.stop(name)

    def _known_services(self) -> list[str]:
        """Every service with a pid file (workers from an earlier, larger WORKERS too)."""
        order = {**{service: 0 for service, _o, _c in REDIS_ROLES.values()}, "api": 2, "nginx": 3}
        names = [p.stem for p in self.config.run_dir.glob("*.pid")]
        return sorted(names, key=lambda n: (order.get(n, 1), n))

    def status(self) -> list[tuple[str, int | None]]:
        names = self.services() + [n for n in self._known_services() if n not in self.services()]
        return [(name, self.pid(name)) for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "redis-url"])
    args = parser.parse_args(argv)
    stack = Stack(StackConfig.from_env())
    if args.command == "up":
        try:
            stack.up()
        except StackError as exc:
            print(f"make up failed: {exc}", file=sys.stderr)
            return 1
        print(f"The image classifier is up at {stack.config.url}  (logs: {stack.logs})")
        print(f"Bulk client: {VENV_BIN / 'imgclf'} classify PATH... --out results.csv")
    elif args.command == "redis-url":  # for make export-feedback: the store, as the API's user
        print(stack.redis_url("store", "api"))
    elif args.command == "down":
        stack.down()
        print("stopped")
    else:
        for name, pid in stack.status():
            print(f"{name:12} {'running' if pid else 'stopped':8} {pid or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
NGINX_DIR = ROOT / "nginx"
START_TIMEOUT_S = 60.0


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
    def redis_url(self) -> str:
        return f"redis://{self.redis_host or self.host}:{self.redis_port}/0"


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

    # -- bookkeeping -------------------------------------------------------
    def services(self) -> list[str]:
        workers = [f"worker-{i}" for i in range(1, self.config.workers + 1)]
        return ["redis", *workers, *(["trainer"] if self.config.trainer else []), "api", "nginx"]

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

    def worker_id(self, name: str) -> str:
        """The consumer name and heartbeat id of a worker service ("worker-1@8080")."""
        return f"{name}@{self.config.port}"

    def redis(self, socket_timeout: float = 1.0):
        """A client of this stack's Redis (with its password, when set)."""
        from imgclf_contract import redis_client
        from imgclf_contract.settings import SharedSettings

        return redis_client.connect(SharedSettings.from_env(self.service_env()), socket_timeout=socket_timeout)

    def service_env(self) -> dict[str, str]:
        env = {**os.environ, **self.config.env, "REDIS_URL": self.config.redis_url}
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    # -- commands per service ----------------------------------------------
    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        argv, env = self._service_command(name)
        return [*self.config.launcher, *argv], env

    def _service_command(self, name: str) -> tuple[list[str], dict[str, str]]:
        env = self.service_env()
        if name == "redis":
            return ["redis-server", str(self._redis_conf())], env
        if name.startswith("worker-"):
            env.update(self.config.worker_env.get(name, {}), WORKER_ID=self.worker_id(name))
            return self.config.worker_argv.get(name, [str(VENV_BIN / "ml-worker")]), env
        if name == "trainer":
            return [str(VENV_BIN / "python"), "-m", "ml_worker.trainer"], env
        if name == "api":
            metrics_dir = self.config.run_dir / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env.update(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), API_BIND=f"{self.config.host}:{self.config.api_port}")
            env.setdefault("MALLOC_ARENA_MAX", "2")  # many threads decoding images: cap glibc's arenas
            return [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "backend" / "gunicorn.conf.py")], env
        if name == "nginx":
            conf = self._nginx_conf()
            prefix, error_log, directives = str(conf.parent), str(self.logs / "nginx-error.log"), "daemon off;"
            return ["nginx", "-p", prefix, "-e", error_log, "-c", str(conf), "-g", directives + _nginx_user()], env
        raise KeyError(name)

    def _redis_conf(self) -> Path:
        data = self.config.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        password = self.service_env().get("REDIS_PASSWORD", "")
        lines = [
            f"port {self.config.redis_port}",
            f"bind {self.config.host}",
            f"dir {data}",
            "appendonly yes",  # feedback must survive restarts and crashes
            "appendfsync everysec",
            'save ""',  # durability comes from the AOF alone
            "hz 100",  # blocking-read timeouts (the worker's batch window) fire within 10 ms, not 100
            "protected-mode yes",
            *([f"requirepass {_quoted(password)}"] if password else []),
        ]
        conf = data / "redis.conf"
        conf.touch(mode=0o600)
        conf.chmod(0o600)  # it may hold the password
        conf.write_text("\n".join(lines) + "\n")
        return conf

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
        (conf_dir / "servers" / "tls.conf").unlink(missing_ok=True)
        for out, template in render.items():
            text = Template((NGINX_DIR / template).read_text()).safe_substitute(values)
            (conf_dir / out).write_text(text)
        return conf_dir / "nginx.conf"

    # -- readiness -----------------------------------------------------------
    def _ready(self, name: str) -> bool:
        if name == "redis" or name.startswith("worker-"):
            import redis

            try:
                return self._redis_ready() if name == "redis" else self.worker_live(name)
            except redis.RedisError:
                return False
        if name == "trainer":
            return "trainer ready" in self.log_path(name).read_text(errors="replace")
        if name == "api":
            return _http_ok(f"http://{self.config.host}:{self.config.api_port}/api/v1/health")
        return _http_ok(f"{self.config.url}/api/v1/ready")

    def _redis_ready(self) -> bool:
        return bool(self.redis().ping())

    def worker_live(self, name: str) -> bool:
        """Ready once the process we started has a live heartbeat: a worker beats only with its model
        loaded and warmed up (the pid tells it from a killed predecessor's heartbeat, not yet stale)."""
        from imgclf_contract.liveness import live_workers
        from imgclf_contract.settings import SharedSettings

        stale_s = SharedSettings.from_env(self.service_env()).heartbeat_stale_s
        ours = (self.worker_id(name), self.pid(name))
        return any((w["worker_id"], w["pid"]) == ours for w in live_workers(self.redis(), stale_s))

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
            self.logs.mkdir(parents=True, exist_ok=True)
            argv, env = self._command(name)
            with open(self.log_path(name), "w") as log:
                proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=ROOT,
                    start_new_session=True,
                )
            pid = proc.pid
            self._pidfile(name).write_text(f"{pid} {_start_time(pid)}\n")
        if wait:
            self.wait_ready(name)
        return pid

    def up(self) -> None:
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
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
        order = {"redis": 0, "api": 2, "nginx": 3}
        names = [p.stem for p in self.config.run_dir.glob("*.pid")]
        return sorted(names, key=lambda n: (order.get(n, 1), n))

    def status(self) -> list[tuple[str, int | None]]:
        names = self.services() + [n for n in self._known_services() if n not in self.services()]
        return [(name, self.pid(name)) for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
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
    elif args.command == "down":
        stack.down()
        print("stopped")
    else:
        for name, pid in stack.status():
            print(f"{name:12} {'running' if pid else 'stopped':8} {pid or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

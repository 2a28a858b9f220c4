"""docker-compose.yml, the Dockerfiles and the images' entrypoints, checked without a Docker engine.

`make test-compose` (scripts/compose_test.py) builds and runs the stack for real; these fast
checks cover what needs no engine: the compose file's structure (PyYAML, and docker-compose
itself), the Dockerfiles' bases, stages and users, nginx/docker-entrypoint.sh rendering the
templates on this host (then ``nginx -T``, and the same limits as ``make up``), and the Redis
entrypoint, its password file and healthcheck against a real redis-server.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import fields
from pathlib import Path

import psutil
import pytest
import redis
import yaml

from api.settings import ApiSettings
from imgclf_contract.settings import ConfigError
from ml_worker.settings import TrainerSettings, WorkerSettings
from scripts.ports import is_free, unused_port
from scripts.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_DOCKERFILE = ROOT / "nginx" / "Dockerfile"
PYTHON_DOCKERFILES = {"api": ROOT / "backend" / "Dockerfile", "worker": ROOT / "ml_worker" / "Dockerfile"}
DOCKERFILES = {**PYTHON_DOCKERFILES, "nginx": NGINX_DOCKERFILE, "redis": ROOT / "redis-server" / "Dockerfile"}
# Settings the shared x-settings block leaves out on purpose, and why.
NOT_SHARED = {
    "REDIS_PASSWORD": "read from REDIS_PASSWORD_FILE, the file the redis service writes",
    "ARTIFACTS_DIR": "fixed by the worker image",
    "BACKEND": "the worker image has LiteRT only",
    "MODELS": "a worker serves every model built into its image",
    "IMAGENET_SAMPLE_DIR": "the build's accuracy measurement; evaluation photos are never in an image",
    "WORKER_ID": "defaults to <container hostname>-<pid>, unique per replica",
    "TRUSTED_PROXIES": "the API's own, set on the api service",
}
# Template variables naming paths in the container; remapped under tmp for `nginx -T` here.
NGINX_PATH_VARS = ("NGINX_TEMPLATE_DIR", "NGINX_CONF_DIR", "NGINX_PREFIX", "NGINX_LOG_DIR", "FRONTEND_ROOT")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict:
    return compose()["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ``$$`` is a literal ``$``, ``${VAR:-default}`` a value."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1)) or (match.group(2) or "")

    return re.sub(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}", one, value)


def service_env(name: str, env: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(str(value), env) for key, value in services()[name].get("environment", {}).items()}


def stages(dockerfile: Path) -> dict[str, list[str]]:
    """Each named build stage's instructions (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    result: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (line.strip() for line in text.splitlines()):
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)$", line, re.IGNORECASE):
            current = result.setdefault(match.group(1), [])
        elif line and not line.startswith("#"):
            current.append(line)
    return result


def dockerfile_lines(dockerfile: Path, instruction: str) -> list[str]:
    lines = dockerfile.read_text().splitlines()
    return [line.split(None, 1)[1] for line in lines if line.startswith(instruction + " ")]


# -- compose structure ---------------------------------------------------------


def test_the_seven_services() -> None:
    assert set(services()) == {"nginx", "api", "worker", "trainer", "redis", "redis-queue", "redis-cache"}


def test_only_nginx_is_published_on_loopback_8080() -> None:
    published = {name: [interpolate(p, {}) for p in svc.get("ports", [])] for name, svc in services().items()}
    assert published == {"nginx": ["127.0.0.1:8080:8080"]} | {name: [] for name in services() if name != "nginx"}


def test_redis_keeps_an_append_only_file_on_a_named_volume() -> None:
    redis_service = services()["redis"]
    command = redis_service["command"]
    assert redis_service["build"] == {"context": ".", "dockerfile": "redis-server/Dockerfile"}
    for option, value in (("--appendonly", "yes"), ("--appendfsync", "everysec"), ("--save", ""), ("--hz", "100")):
        assert command[command.index(option) + 1] == value
    mounts = dict(reversed(volume.split(":")) for volume in redis_service["volumes"])
    assert mounts == {"/data": "redis-data", "/run/secrets/redis": "redis-secret"}
    assert set(mounts.values()) <= set(compose()["volumes"])
    assert "ports" not in redis_service and "expose" not in redis_service


def test_nothing_from_an_upload_reaches_a_disk() -> None:
    """Jobs (with their crops) and cached answers live in Redis servers with no AOF, no snapshots
    and no volume (issue "Reliability and security round 2"); the queue never evicts a job."""
    settings = compose()["x-settings"]
    assert interpolate(settings["QUEUE_REDIS_URL"], {}) == "redis://redis-queue:6379/0"
    assert interpolate(settings["CACHE_REDIS_URL"], {}) == "redis://redis-cache:6379/0"
    for name, policy in (("redis-queue", "noeviction"), ("redis-cache", "allkeys-lru")):
        service = services()[name]
        command = [interpolate(part, {}) for part in service["command"]]
        assert command[command.index("--appendonly") + 1] == "no" and command[command.index("--save") + 1] == ""
        assert command[command.index("--maxmemory-policy") + 1] == policy
        assert service["volumes"] == ["redis-secret:/run/secrets/redis:ro"]  # the password, nothing else
        assert service["read_only"] is True and "ports" not in service
        assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}  # it writes the password


def test_api_worker_and_trainer_read_the_redis_password_from_its_volume() -> None:
    secret_file = services()["redis"]["environment"]["REDIS_PASSWORD_FILE"]
    for name in ("api", "worker", "trainer"):
        service = services()[name]
        assert service["environment"]["REDIS_PASSWORD_FILE"] == secret_file
        assert "REDIS_PASSWORD" not in service["environment"]
        assert service["volumes"] == [f"redis-secret:{Path(secret_file).parent}:ro"]
    for name in ("worker", "trainer"):
        assert services()[name]["healthcheck"]["test"][:2] == ["CMD", "with-redis-password"]


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


ALL_REDIS = {"redis": "service_healthy", "redis-queue": "service_healthy", "redis-cache": "service_healthy"}


def test_start_order_waits_for_health() -> None:
    waits = {
        name: {dep: cond["condition"] for dep, cond in svc.get("depends_on", {}).items()}
        for name, svc in services().items()
    }
    assert waits == {
        "nginx": {"api": "service_healthy"},
        "api": ALL_REDIS,
        "worker": ALL_REDIS,
        "trainer": ALL_REDIS,
        "redis": {},
        "redis-queue": {"redis": "service_healthy"},
        "redis-cache": {"redis": "service_healthy"},
    }


def test_worker_can_be_scaled() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_api_and_worker_share_every_setting() -> None:
    api_env, worker_env = services()["api"]["environment"], services()["worker"]["environment"]
    shared = set(worker_env) - {"REDIS_PASSWORD_FILE"}  # a file of the images, not a Settings field
    assert shared <= set(api_env)
    everything = {f.name.upper() for settings in (ApiSettings, WorkerSettings) for f in fields(settings)}
    assert shared | set(NOT_SHARED) == everything
    assert "TRUSTED_PROXIES" in api_env


@pytest.mark.parametrize(
    ("peer", "client"),
    [("172.18.0.5", "203.0.113.9"), ("::ffff:172.18.0.5", "203.0.113.9"), ("198.51.100.7", "198.51.100.7")],
)
def test_api_trusts_x_real_ip_from_the_compose_network(peer: str, client: str) -> None:
    """nginx's address on the compose network is not known in advance: TRUSTED_PROXIES takes networks."""
    from api import create_app
    from api.middleware.client_address import client_address

    settings = ApiSettings.from_env({"TRUSTED_PROXIES": service_env("api", {})["TRUSTED_PROXIES"]})
    app = create_app(settings)
    with app.test_request_context(headers={"X-Real-IP": "203.0.113.9"}, environ_base={"REMOTE_ADDR": peer}):
        assert client_address() == client


def test_a_malformed_trusted_proxy_stops_the_api_at_start() -> None:
    from api import create_app

    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app(ApiSettings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8,nginx"}))


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file() -> None:
    def config(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker-compose", "-f", str(COMPOSE_FILE), "config", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    quiet = config("-q")
    assert quiet.returncode == 0, quiet.stderr
    resolved = yaml.safe_load(config(HTTP_PORT="9090", HTTP_BIND="0.0.0.0", REDIS_PASSWORD="pw").stdout)["services"]
    assert resolved["nginx"]["ports"] == ["0.0.0.0:9090:8080/tcp"]
    assert resolved["redis"]["environment"]["REDIS_PASSWORD"] == "pw"
    assert "pw" not in json.dumps(resolved["redis"]["command"])  # never in argv


def test_the_trainer_runs_like_make_ups_on_the_internal_network_only(tmp_path: Path) -> None:
    trainer, worker = services()["trainer"], services()["worker"]
    assert trainer["build"] == {"context": ".", "dockerfile": "ml_worker/Dockerfile", "target": "trainer"}
    assert trainer["networks"] == ["data"] and compose()["networks"]["data"]["internal"] is True
    assert "ports" not in trainer and trainer["read_only"] is True
    assert trainer["environment"] == {**worker["environment"], "TRAINER_NICE": "${TRAINER_NICE:-}"}
    assert {f.name.upper() for f in fields(TrainerSettings)} - set(trainer["environment"]) == {
        "REDIS_PASSWORD",
        "ARTIFACTS_DIR",
    }
    steps = stages(PYTHON_DOCKERFILES["worker"])["trainer"]
    command, _env = Stack(StackConfig(run_dir=tmp_path, trainer=True))._service_command("trainer")
    assert f'CMD ["python", "-m", "{command[-1]}"]' in steps and command[-2] == "-m"  # make up's trainer
    assert 'ENTRYPOINT ["with-redis-password"]' in steps
    assert [s.split()[1].split(":")[0] for s in steps if s.startswith("USER ")] == ["10001"]
    # TensorFlow and the base models' model.keras from the builder: no second download, no second build
    assert "COPY --from=builder /opt/venv /opt/venv" in steps
    assert "COPY --from=builder /app/artifacts /app/artifacts" in steps


# -- Dockerfiles ---------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_every_image_is_debian_bookworm_slim_and_runs_as_non_root(service: str) -> None:
    """Every layer comes from Debian's archive and PyPI, so CI builds what a user's machine builds."""
    dockerfile = DOCKERFILES[service]
    assert services()[service]["build"]["dockerfile"] == str(dockerfile.relative_to(ROOT))
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in dockerfile.read_text().splitlines()
    assert {line.split()[0] for line in dockerfile_lines(dockerfile, "FROM")} <= {"${BASE_IMAGE}"} | set(
        stages(dockerfile)
    )
    user = dockerfile_lines(dockerfile, "USER")[-1].split(":")[0]
    assert user not in ("root", "0")


@pytest.mark.parametrize("service", sorted(PYTHON_DOCKERFILES))
def test_python_images_test_and_run_slim(service: str) -> None:
    dockerfile = PYTHON_DOCKERFILES[service]
    build = services()[service]["build"]
    assert ROOT / build["dockerfile"] == dockerfile and build["target"] == "runtime"
    steps = stages(dockerfile)
    assert {"test", "runtime"} <= set(steps)
    assert list(steps)[-1] == "runtime"  # a plain `docker build` gives the runtime image
    assert any(re.search(r'pytest -m "not integration and not e2e" \w+/tests', s) for s in steps["test"])
    venv_from = next(re.match(r"COPY --from=(\S+) /opt/venv", s) for s in steps["runtime"] if "/opt/venv" in s)
    installs = " ".join(s for s in steps[venv_from.group(1)] if "pip install" in s)
    assert "-c constraints.txt" in installs
    assert "tensorflow" not in installs and "[build" not in installs  # the runtime has no TensorFlow
    assert not [s for s in steps["runtime"] if "apt-get install" in s]  # the runtime adds no packages


def test_the_worker_image_builds_the_models_make_builds() -> None:
    """`make up` builds BUILT_MODELS; the image runs the build without --model, i.e. DEFAULT_MODELS:
    the two lists must be the same, or compose would serve other models than `make up`."""
    from ml_worker.build import DEFAULT_MODELS

    (built,) = re.findall(r"^BUILT_MODELS \?= ([\w ]+?)\s*(?:#|$)", (ROOT / "Makefile").read_text(), re.M)
    assert tuple(built.split()) == DEFAULT_MODELS
    builds = [s for s in stages(PYTHON_DOCKERFILES["worker"])["builder"] if "ml_worker.build" in s]
    assert len(builds) == 1 and "python -m ml_worker.build --force" in builds[0] and "--model" not in builds[0]


def test_python_images_share_their_debian_layers() -> None:
    """Identical first stages: BuildKit builds Debian's python3 layers once for both images."""
    api, worker = (list(stages(d).items())[:2] for d in PYTHON_DOCKERFILES.values())
    assert api == worker


def test_worker_image_builds_the_model_like_make() -> None:
    steps = stages(PYTHON_DOCKERFILES["worker"])
    make_command = "python -m ml_worker.build --force"
    assert make_command in (ROOT / "Makefile").read_text().replace("$(PY)", "python")
    assert any(make_command in s for s in steps["builder"])
    assert any("COPY --from=builder" in s and s.endswith("/app/artifacts") for s in steps["runtime"])


# -- nginx: its entrypoint renders the templates ------------------------------------


def nginx_image_env() -> dict[str, str]:
    return dict(line.split("=", 1) for line in dockerfile_lines(NGINX_DOCKERFILE, "ENV"))


def lay_out_nginx_image(root: Path) -> dict[str, str]:
    """The image's template directory under root (per the COPY lines), and its ENV with paths under root."""
    env = {**nginx_image_env()}
    env.update({var: str(root / env[var].lstrip("/")) for var in NGINX_PATH_VARS})
    for line in dockerfile_lines(NGINX_DOCKERFILE, "COPY"):
        src, dest = line.split()
        if dest.startswith(nginx_image_env()["NGINX_TEMPLATE_DIR"] + "/"):
            target = root / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / src, target)
    for var in ("NGINX_PREFIX", "NGINX_LOG_DIR", "FRONTEND_ROOT"):
        Path(env[var]).mkdir(parents=True, exist_ok=True)
    return env


def run_nginx_entrypoint(root: Path, settings_env: dict[str, str]) -> subprocess.CompletedProcess:
    """nginx/docker-entrypoint.sh on this host, its final `nginx` made an `nginx -T` (test and dump)."""
    env = lay_out_nginx_image(root)
    shim = root / "bin" / "nginx"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {shutil.which("nginx")} -T "$@"\n')
    shim.chmod(0o755)
    env.update(service_env("nginx", settings_env), API_UPSTREAM="127.0.0.1:8000", PATH=f"{shim.parent}:/usr/bin:/bin")
    return subprocess.run(
        [str(ROOT / "nginx" / "docker-entrypoint.sh")], env=env, capture_output=True, text=True, timeout=30
    )


def test_nginx_image_layout_matches_the_includes() -> None:
    env = nginx_image_env()
    copies = dict(reversed(line.split()) for line in dockerfile_lines(NGINX_DOCKERFILE, "COPY"))
    templates = {dest.removeprefix(env["NGINX_TEMPLATE_DIR"] + "/") for dest in copies if dest.endswith(".template")}
    assert templates == {"nginx.conf.template", "locations.conf.template", "servers/http.conf.template"}
    assert copies[env["NGINX_TEMPLATE_DIR"] + "/limits.envsh"] == "nginx/docker-limits.envsh"
    assert env["NGINX_LISTEN"] == "8080" and env["NGINX_CONF_DIR"].startswith("/tmp/")  # compose's tmpfs
    host, port = env["API_UPSTREAM"].split(":")
    assert host in services() and f"API_BIND=0.0.0.0:{port}" in PYTHON_DOCKERFILES["api"].read_text()
    assert services()["nginx"]["read_only"] is True and services()["nginx"]["tmpfs"] == ["/tmp"]


NEEDS_NGINX = pytest.mark.skipif(
    shutil.which("nginx") is None or not Path("/etc/nginx/mime.types").is_file(), reason="needs Debian's nginx"
)


@NEEDS_NGINX
def test_nginx_entrypoint_renders_a_config_that_passes_nginx_t(tmp_path: Path) -> None:
    check = run_nginx_entrypoint(tmp_path, {})
    assert check.returncode == 0, check.stderr
    assert "listen 8080;" in check.stdout  # the server block made it in through the include
    rendered = [
        line
        for p in (tmp_path / "tmp" / "nginx").rglob("*.conf")
        for line in p.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert rendered and not [line for line in rendered if re.search(r"\$\{\w+\}", line)]  # every variable defined
    assert "$req_id" in "\n".join(rendered)  # nginx's own variables are left alone


LIMITS = (r"client_max_body_size (\S+);", r"proxy_read_timeout (\S+);", r'"max_upload_bytes":(\d+)')


def _limits(locations_conf: str) -> tuple[str, ...]:
    return tuple(re.search(pattern, locations_conf).group(1) for pattern in LIMITS)


@NEEDS_NGINX
@pytest.mark.parametrize("settings_env", [{}, {"MAX_UPLOAD_BYTES": "5000000", "REQUEST_TIMEOUT_S": "7.5"}])
def test_nginx_limits_match_make_up(settings_env: dict[str, str], tmp_path: Path) -> None:
    """The image derives nginx's limits from the API settings exactly as scripts/stack.py does."""
    unset = {"MAX_UPLOAD_BYTES": "", "REQUEST_TIMEOUT_S": ""}
    stack = Stack(StackConfig(run_dir=tmp_path / "stack", port=19480, env={**unset, **settings_env}))
    made_up = (stack._nginx_conf().parent / "locations.conf").read_text()
    assert run_nginx_entrypoint(tmp_path / "image", settings_env).returncode == 0
    assert _limits((tmp_path / "image" / "tmp" / "nginx" / "locations.conf").read_text()) == _limits(made_up)


# -- Redis: the image's entrypoint and the healthcheck on a real redis-server ----------------


def _healthcheck(shim_dir: Path, secret_file: Path) -> int:
    """Run the redis service's CMD-SHELL healthcheck, its redis-cli pointed at our server."""
    check = interpolate(services()["redis"]["healthcheck"]["test"][1], {})
    env = {"PATH": f"{shim_dir}:{os.environ['PATH']}", "REDIS_PASSWORD_FILE": str(secret_file)}
    return subprocess.run(["sh", "-c", check], env=env, capture_output=True, timeout=10).returncode


class RedisEntrypoint:
    """redis/docker-entrypoint.sh run on this host with the compose command, on a free port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = unused_port()
        self.dir = tmp_path
        self.secret = tmp_path / "secret" / "password"
        self.secret.parent.mkdir(exist_ok=True)
        self.shim = tmp_path / "bin" / "redis-cli"
        self.shim.parent.mkdir(exist_ok=True)
        self.shim.write_text(f'#!/bin/sh\nexec {shutil.which("redis-cli")} -p {self.port} "$@"\n')
        self.shim.chmod(0o755)

    def start(self, password: str) -> subprocess.Popen:
        argv = [
            str(ROOT / "redis-server" / "docker-entrypoint.sh"),
            *services()["redis"]["command"],
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
        ]
        env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": password, "REDIS_PASSWORD_FILE": str(self.secret)}
        server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while _healthcheck(self.shim.parent, self.secret) != 0:
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "the healthcheck never passed"
            time.sleep(0.1)
        return server


@pytest.fixture
def redis_entrypoint(tmp_path: Path) -> RedisEntrypoint:
    return RedisEntrypoint(tmp_path)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_redis_generates_a_password_once_and_keeps_it(redis_entrypoint: RedisEntrypoint) -> None:
    server = redis_entrypoint.start(password="")
    try:
        password = redis_entrypoint.secret.read_text()
        assert re.fullmatch(r"[0-9a-f]{64}", password)
        assert redis_entrypoint.secret.stat().st_mode & 0o777 == 0o440
        client = redis.Redis(port=redis_entrypoint.port, password=password, decode_responses=True)
        config = client.config_get("appendonly") | client.config_get("appendfsync") | client.config_get("save")
        assert config == {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=redis_entrypoint.port).ping()
        assert password not in " ".join(psutil.Process(server.pid).cmdline())  # stdin, not argv
        # The entrypoint's own process is redis-server: SIGTERM (docker stop) reaches it.
        assert psutil.Process(server.pid).name() == "redis-server"
    finally:
        _stop(server)
    assert is_free(redis_entrypoint.port)  # gone with the signal, nothing left behind
    _stop(redis_entrypoint.start(password=""))  # a restart keeps the password
    assert redis_entrypoint.secret.read_text() == password


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_redis_takes_redis_password_when_set(redis_entrypoint: RedisEntrypoint) -> None:
    password = 's3cret "pass\\ word'
    server = redis_entrypoint.start(password=password)
    try:
        assert redis_entrypoint.secret.read_text() == password
        assert redis.Redis(port=redis_entrypoint.port, password=password).ping()
        redis_entrypoint.secret.chmod(0o600)
        redis_entrypoint.secret.write_text("wrong")
        assert _healthcheck(redis_entrypoint.shim.parent, redis_entrypoint.secret) != 0
    finally:
        _stop(server)


def test_with_redis_password_exports_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from the file")
    script = str(ROOT / "redis-server" / "with-redis-password.sh")
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=10)
    shown = run([script, "sh", "-c", 'printf %s "$REDIS_PASSWORD"'], env={"REDIS_PASSWORD_FILE": str(secret)})
    assert shown.stdout == "from the file"
    untouched = run([script, "sh", "-c", 'printf %s "$REDIS_PASSWORD"'], env={"REDIS_PASSWORD": "as given"})
    assert untouched.stdout == "as given"
    missing = run([script, "true"], env={"REDIS_PASSWORD_FILE": str(tmp_path / "absent")})
    assert missing.returncode != 0  # no start without the password it was told to read

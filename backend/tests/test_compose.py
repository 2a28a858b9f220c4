"""docker-compose.yml and the Dockerfiles, checked without a Docker engine.

No engine runs here, so no image is built or started. What can be checked is:
the compose file's structure (PyYAML, and docker-compose itself), the
Dockerfiles' stages and users, the nginx templates rendered the way the nginx
image's entrypoint renders them (then ``nginx -t``, and the same limits as
``make up``), and the Redis command and healthcheck against a real redis-server.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import fields
from pathlib import Path
from string import Template

import pytest
import redis
import yaml
from stack import Stack, StackConfig

from api.settings import ApiSettings
from imgclf_contract.settings import ConfigError
from ml_worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_DOCKERFILE = ROOT / "nginx" / "Dockerfile"
PYTHON_DOCKERFILES = {"api": ROOT / "backend" / "Dockerfile", "worker": ROOT / "ml_worker" / "Dockerfile"}
# Settings the shared x-settings block leaves out on purpose, and why.
NOT_SHARED = {
    "ARTIFACTS_DIR": "fixed by the worker image",
    "BACKEND": "the worker image has LiteRT only",
    "MODELS": "a worker serves every model built into its image",
    "IMAGENET_SAMPLE_DIR": "the build's accuracy measurement; evaluation photos are never in an image",
    "WORKER_ID": "defaults to <container hostname>-<pid>, unique per replica",
    "TRUSTED_PROXIES": "the API's own, set on the api service",
    "FAULT_INFERENCE_DELAY_MS": "fault tests only",
}
# Template variables naming paths in the container; remapped under tmp for `nginx -t` here.
NGINX_PATH_VARS = ("NGINX_CONF_DIR", "NGINX_PREFIX", "NGINX_LOG_DIR", "FRONTEND_ROOT")


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


def test_the_four_services() -> None:
    assert set(services()) == {"nginx", "api", "worker", "redis"}


def test_only_nginx_is_published_on_8080() -> None:
    published = {name: [interpolate(p, {}) for p in svc.get("ports", [])] for name, svc in services().items()}
    assert published == {"nginx": ["8080:8080"], "api": [], "worker": [], "redis": []}


def test_redis_keeps_an_append_only_file_on_a_named_volume() -> None:
    redis_service = services()["redis"]
    command = redis_service["command"]
    assert redis_service["image"] == "redis:7"
    for option, value in (("--appendonly", "yes"), ("--appendfsync", "everysec"), ("--save", ""), ("--hz", "100")):
        assert command[command.index(option) + 1] == value
    volume, target = redis_service["volumes"][0].split(":")
    assert target == "/data"
    assert volume in compose()["volumes"]
    assert "ports" not in redis_service and "expose" not in redis_service


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def test_start_order_waits_for_health() -> None:
    waits = {
        name: {dep: cond["condition"] for dep, cond in svc.get("depends_on", {}).items()}
        for name, svc in services().items()
    }
    assert waits == {
        "nginx": {"api": "service_healthy"},
        "api": {"redis": "service_healthy"},
        "worker": {"redis": "service_healthy"},
        "redis": {},
    }


def test_worker_can_be_scaled() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_api_and_worker_share_every_setting() -> None:
    api_env, worker_env = services()["api"]["environment"], services()["worker"]["environment"]
    shared = set(worker_env)
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
        return subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config", *args], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=60)  # fmt: skip

    quiet = config("-q")
    assert quiet.returncode == 0, quiet.stderr
    resolved = yaml.safe_load(config(HTTP_PORT="9090", REDIS_PASSWORD="pw").stdout)["services"]
    assert [(int(p["published"]), int(p["target"])) for p in resolved["nginx"]["ports"]] == [(9090, 8080)]
    assert resolved["redis"]["command"][-2:] == ["--requirepass", "pw"]
    assert resolved["worker"]["environment"]["REDIS_PASSWORD"] == "pw"


# -- Dockerfiles ---------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(PYTHON_DOCKERFILES))
def test_python_images_test_and_run_slim_as_non_root(service: str) -> None:
    dockerfile = PYTHON_DOCKERFILES[service]
    build = services()[service]["build"]
    assert ROOT / build["dockerfile"] == dockerfile and build["target"] == "runtime"
    steps = stages(dockerfile)
    assert {"test", "runtime"} <= set(steps)
    assert list(steps)[-1] == "runtime"  # a plain `docker build` gives the runtime image
    assert any(re.search(r'pytest -m "not integration and not e2e" \w+/tests', s) for s in steps["test"])
    user = [s for s in steps["runtime"] if s.startswith("USER ")][-1].split()[1]
    assert user.split(":")[0] not in ("root", "0")
    venv_from = next(re.match(r"COPY --from=(\S+) /opt/venv", s) for s in steps["runtime"] if "/opt/venv" in s)
    installs = " ".join(s for s in steps[venv_from.group(1)] if "pip install" in s)
    assert "-c constraints.txt" in installs
    assert "tensorflow" not in installs and "[build" not in installs  # the runtime has no TensorFlow


def test_worker_image_builds_the_model_like_make() -> None:
    steps = stages(PYTHON_DOCKERFILES["worker"])
    make_command = "python -m ml_worker.build --force"
    assert make_command in (ROOT / "Makefile").read_text().replace("$(PY)", "python")
    assert any(make_command in s for s in steps["builder"])
    assert any("COPY --from=builder" in s and s.endswith("/app/artifacts") for s in steps["runtime"])


# -- nginx: the image's template rendering ---------------------------------------


def nginx_templates() -> dict[str, Path]:
    """Rendered path (under NGINX_ENVSUBST_OUTPUT_DIR) -> our template, per nginx/Dockerfile."""
    copies = (line.split() for line in dockerfile_lines(NGINX_DOCKERFILE, "COPY"))
    return {
        dest.removeprefix("/etc/nginx/templates/").removesuffix(".template"): ROOT / src
        for src, dest in copies
        if dest.startswith("/etc/nginx/templates/")
    }


def nginx_image_env(settings_env: dict[str, str]) -> dict[str, str]:
    """What the entrypoint renders with: image ENV, compose's environment, then our .envsh."""
    image_env = dict(line.split("=", 1) for line in dockerfile_lines(NGINX_DOCKERFILE, "ENV"))
    envsh = next(ROOT / src for src, dest in (c.split() for c in dockerfile_lines(NGINX_DOCKERFILE, "COPY"))
                 if dest.startswith("/docker-entrypoint.d/") and dest.endswith(".envsh"))  # fmt: skip
    env = {**image_env, **service_env("nginx", settings_env), "PATH": os.environ["PATH"]}
    sourced = subprocess.run(["sh", "-c", '. "$1" && env', "sh", str(envsh)], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
    return dict(line.split("=", 1) for line in sourced.stdout.splitlines() if "=" in line)


def render(templates: dict[str, Path], env: dict[str, str], output_dir: Path) -> None:
    """envsubst of defined variables, like the image's 20-envsubst-on-templates.sh."""
    for relative, template in templates.items():
        target = output_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(template.read_text()).safe_substitute(env))


def test_nginx_image_layout_matches_the_includes() -> None:
    env = nginx_image_env({})
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == env["NGINX_CONF_DIR"]  # our includes point where it renders
    assert set(nginx_templates()) == {"nginx.conf", "locations.conf", "servers/http.conf"}
    assert env["NGINX_LISTEN"] == "8080"
    host, port = env["API_UPSTREAM"].split(":")
    assert host in services() and f"API_BIND=0.0.0.0:{port}" in PYTHON_DOCKERFILES["api"].read_text()


@pytest.mark.skipif(shutil.which("nginx") is None or not Path("/etc/nginx/mime.types").is_file(),
                    reason="needs Debian's nginx")  # fmt: skip
def test_rendered_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    env = nginx_image_env({})
    # The container's paths, moved under tmp; "api" resolves only on the compose network.
    env.update({var: str(tmp_path / env[var].lstrip("/")) for var in NGINX_PATH_VARS}, API_UPSTREAM="127.0.0.1:8000")
    for var in NGINX_PATH_VARS:
        Path(env[var]).mkdir(parents=True, exist_ok=True)
    output_dir = tmp_path / env["NGINX_ENVSUBST_OUTPUT_DIR"].lstrip("/")
    render(nginx_templates(), env, output_dir)
    directives = [line for p in output_dir.rglob("*.conf") for line in p.read_text().splitlines()
                  if not line.lstrip().startswith("#")]  # fmt: skip
    assert not [line for line in directives if re.search(r"\$\{\w+\}", line)]  # every variable was defined
    argv = ["nginx", "-T", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(output_dir / "nginx.conf")]
    check = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    assert "listen 8080;" in check.stdout  # the server block made it in through the include


LIMITS = (r"client_max_body_size (\S+);", r"proxy_read_timeout (\S+);", r'"max_upload_bytes":(\d+)')


def _limits(locations_conf: str) -> tuple[str, ...]:
    return tuple(re.search(pattern, locations_conf).group(1) for pattern in LIMITS)


@pytest.mark.parametrize("settings_env", [{}, {"MAX_UPLOAD_BYTES": "5000000", "REQUEST_TIMEOUT_S": "7.5"}])
def test_nginx_limits_match_make_up(settings_env: dict[str, str], tmp_path: Path) -> None:
    """The image derives nginx's limits from the API settings exactly as scripts/stack.py does."""
    unset = {"MAX_UPLOAD_BYTES": "", "REQUEST_TIMEOUT_S": ""}
    stack = Stack(StackConfig(run_dir=tmp_path / "stack", port=19480, env={**unset, **settings_env}))
    made_up = (stack._nginx_conf().parent / "locations.conf").read_text()
    render(nginx_templates(), nginx_image_env(settings_env), tmp_path / "image")
    assert _limits((tmp_path / "image" / "locations.conf").read_text()) == _limits(made_up)


# -- Redis: the compose command and healthcheck on a real redis-server ----------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthcheck(shim_dir: Path, password: str) -> int:
    """Run the redis service's CMD-SHELL healthcheck, its redis-cli pointed at our server."""
    check = interpolate(services()["redis"]["healthcheck"]["test"][1], {})
    env = {"PATH": f"{shim_dir}:{os.environ['PATH']}", "REDIS_PASSWORD": password}
    return subprocess.run(["sh", "-c", check], env=env, capture_output=True, timeout=10).returncode


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
@pytest.mark.parametrize("password", ["", "s3cret pass"])
def test_redis_command_and_healthcheck(password: str, tmp_path: Path) -> None:
    port = _free_port()
    argv = [interpolate(arg, {"REDIS_PASSWORD": password}) for arg in services()["redis"]["command"]]
    shim = tmp_path / "bin" / "redis-cli"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {shutil.which("redis-cli")} -p {port} "$@"\n')
    shim.chmod(0o755)
    server = subprocess.Popen([*argv, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while _healthcheck(shim.parent, password) != 0:
            assert time.monotonic() < deadline, "the healthcheck never passed"
            time.sleep(0.1)
        client = redis.Redis(port=port, password=password or None, decode_responses=True)
        config = client.config_get("appendonly") | client.config_get("appendfsync") | client.config_get("save")
        assert config == {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
        if password:
            assert _healthcheck(shim.parent, "wrong") != 0
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(port=port).ping()
    finally:
        server.terminate()
        server.wait(timeout=10)

"""``make test-compose``: build the docker-compose stack with the project's own Dockerfiles,
start it on a loopback-only port, test it through nginx, and always tear it down.

Steps: Debian's engine and tools installed when missing; ``dockerd`` started when none
answers (and stopped at the end only then); ``debian:bookworm-slim`` made with mmdebstrap
when absent (kept for the next run, like every built layer); ``docker-compose build``;
``up -d``; wait until every container is healthy; the checks in CHECKS; ``down -v``; prune
untagged images and old build cache.
Prints each check, the timings, the growth of Docker's root directory, and finally
``N passed, N failed``; exits 1 when anything failed (a failed step counts as a check).

Configuration: COMPOSE_TEST_PORT (published port on 127.0.0.1, default 18080),
COMPOSE_TEST_PROJECT (compose project name, default imgclf-compose-test),
COMPOSE_BUILD_CACHE_GB (build cache kept after the run, least recently used dropped first;
default 4), and DOCKER_BRIDGE_IP / DOCKER_ADDRESS_POOL / DOCKER_POOL_SIZE for a dockerd
started here.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from docker_engine import (
    DOCKER,
    Engine,
    EngineConfig,
    EngineError,
    base_image_exists,
    build_base_image,
    docker,
    docker_root_bytes,
    engine_answers,
    install_missing_packages,
    prune_build_leftovers,
)

from imgclf_contract import keys
from imgclf_contract.errors import ErrorCode
from imgclf_contract.settings import SharedSettings
from loadtest import shapes
from ml_worker.golden import PHOTOS

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".test-run" / "compose"
HEALTHY_TIMEOUT_S = 300.0
DEFAULTS = SharedSettings()  # the stack runs with the defaults: Compose.env passes none of the shell's settings
CLIENT_TIMEOUT_S = 3 * DEFAULTS.request_timeout_s  # well past nginx's own timeout: a hang, not a slow answer
SECRET_FILE = "/run/secrets/redis/password"
SERVICES = 7  # nginx, api, worker, trainer, and Redis as store, queue and cache
LITE2 = "efficientnet_lite2"
CUSTOM_DATASET = "compose_shapes"
CUSTOM_LABELS = ("circle", "stripes", "checks")
CUSTOM_PER_LABEL = 8  # enough for a hold-out of each label, few enough for one busy worker
TRAINING_TIMEOUT_S = 300.0  # the trainer runs at niceness 19 on a shared machine


class StepError(RuntimeError):
    """A step before the checks (engine, base, build, start) failed."""


@dataclass
class Compose:
    """docker-compose on this checkout's file, under its own project name and port."""

    project: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        # A clean environment: the shell's settings must not change the stack under test.
        # /usr/bin first: compose builds through Debian's docker client (BuildKit built in).
        keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TERM")}
        return {
            **keep,
            "PATH": f"/usr/bin:{os.environ['PATH']}",
            "HTTP_PORT": str(self.port),
            "DOCKER_BUILDKIT": "1",
            "COMPOSE_DOCKER_CLI_BUILD": "1",
        }

    def argv(self, *args: str) -> list[str]:
        return ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "-p", self.project, *args]

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.argv(*args), cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise StepError(f"docker-compose {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done

    def build(self, log_file: Path) -> None:
        """Build every image, streaming BuildKit's output to log_file."""
        with log_file.open("w") as log:
            done = subprocess.run(
                self.argv("build"), cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, timeout=3600
            )
        if done.returncode != 0:
            raise StepError(f"docker-compose build failed; see {log_file}:\n{log_file.read_text()[-3000:]}")

    def containers(self, service: str | None = None) -> list[str]:
        return self.run("ps", "-q", *([service] if service else [])).stdout.split()

    def exec(self, service: str, *argv: str) -> subprocess.CompletedProcess:
        """argv in the service's (first) container, as its image's user."""
        return self.run("exec", "-T", service, *argv, check=False)

    def wait_healthy(self, expected: int, timeout_s: float = HEALTHY_TIMEOUT_S) -> None:
        """Until `expected` containers run and every one is healthy."""
        deadline = time.monotonic() + timeout_s
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = health(self.containers())
            if len(states) == expected and all(s == "healthy" for s in states.values()):
                return
            time.sleep(1)
        raise StepError(f"not healthy after {timeout_s:.0f} s: {states}\n{self.run('logs', '--tail', '30').stdout}")


def health(container_ids: list[str]) -> dict[str, str]:
    """Container name -> health status."""
    if not container_ids:
        return {}
    fmt = "{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
    out = docker("inspect", "--format", fmt, *container_ids, check=False).stdout
    return dict(line.lstrip("/").split(" ", 1) for line in out.splitlines() if " " in line)


def inspect(container_id: str) -> dict:
    return json.loads(docker("inspect", container_id).stdout)[0]


# -- requests through nginx -----------------------------------------------------

_variant = itertools.count(1)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_AFTER_IHDR = len(PNG_SIGNATURE) + 25  # length, type, 13 bytes of data, CRC


def unique_photo(index: int = 0) -> tuple[str, bytes, frozenset[str]]:
    """A golden photo with a numbered comment added: new bytes, so never a cache hit, same pixels."""
    photo = PHOTOS[index % len(PHOTOS)]
    data = photo.path.read_bytes()
    note = f"imgclf compose test {next(_variant)}".encode()
    if data.startswith(PNG_SIGNATURE):  # a tEXt chunk right after IHDR
        chunk = b"tEXt" + b"Comment\x00" + note
        added = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
        data = data[:PNG_AFTER_IHDR] + added + data[PNG_AFTER_IHDR:]
    else:  # JPEG: a COM segment right after SOI
        data = data[:2] + b"\xff\xfe" + struct.pack(">H", len(note) + 2) + note + data[2:]
    return f"variant-{index}{photo.path.suffix}", data, photo.accepted


def predict(
    url: str, name: str, data: bytes, session: requests.Session | None = None, **form: str | int
) -> requests.Response:
    """POST /predictions; `form`: the request's other fields (model, top_k)."""
    post = (session or requests).post
    return post(f"{url}/api/v1/predictions", files={"image": (name, data)}, data=form, timeout=CLIENT_TIMEOUT_S)


def assert_envelope(response: requests.Response, status: int, code: ErrorCode) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    assert body["error"]["code"] == code.value and body["error"]["message"], body
    assert body["request_id"], body


# -- the checks -------------------------------------------------------------------


def check_page(stack: Compose) -> None:
    response = requests.get(f"{stack.url}/", timeout=10)
    assert response.status_code == 200, response.status_code
    assert response.content == (ROOT / "frontend" / "index.html").read_bytes()


def check_health_and_ready(stack: Compose) -> None:
    health_response = requests.get(f"{stack.url}/api/v1/health", timeout=10)
    assert (health_response.status_code, health_response.json()) == (200, {"status": "ok"})
    ready = requests.get(f"{stack.url}/api/v1/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["workers"] == 1, ready.json()


def check_golden_photos(stack: Compose) -> None:
    for photo in PHOTOS:
        response = predict(stack.url, photo.file, photo.path.read_bytes())
        assert response.status_code == 200, (photo.file, response.text[:300])
        top = response.json()["predictions"][0]
        assert top["label"] in photo.accepted and top["score"] >= photo.min_score, (photo.file, top)


def check_model_choice_lite2(stack: Compose) -> None:
    """Every golden photo asked of Lite2 by name: Lite2 answers, and answers right."""
    for photo in PHOTOS:
        response = predict(stack.url, photo.file, photo.path.read_bytes(), model=LITE2, top_k=5)
        assert response.status_code == 200, (photo.file, response.text[:300])
        body = response.json()
        assert body["model"]["name"] == LITE2, (photo.file, body["model"])
        failure = photo.failure([(p["label"], p["score"]) for p in body["predictions"]])
        assert failure is None, failure


def post_json(stack: Compose, path: str, body: dict) -> requests.Response:
    return requests.post(f"{stack.url}/api/v1/{path}", json=body, timeout=CLIENT_TIMEOUT_S)


def fill_dataset(stack: Compose, rng: np.random.Generator) -> None:
    """The dataset made and filled with drawn shapes (loadtest/shapes.py), every upload through nginx."""
    created = post_json(stack, "datasets", {"name": CUSTOM_DATASET})
    assert created.status_code == 201, created.text[:300]
    for label in CUSTOM_LABELS:
        for index in range(CUSTOM_PER_LABEL):
            files = {"image": (f"{label}-{index}.png", shapes.image(label, rng))}
            added = requests.post(
                f"{stack.url}/api/v1/datasets/{CUSTOM_DATASET}/images",
                files=files,
                data={"label": label},
                timeout=CLIENT_TIMEOUT_S,
            )
            assert added.status_code == 201, (label, index, added.text[:300])


def finished_training(stack: Compose, training_id: str) -> dict:
    """The training's state once it has succeeded or failed; AssertionError past TRAINING_TIMEOUT_S."""
    deadline, state = time.monotonic() + TRAINING_TIMEOUT_S, {}
    while time.monotonic() < deadline:
        state = requests.get(f"{stack.url}/api/v1/trainings/{training_id}", timeout=10).json()
        if state["status"] in ("succeeded", "failed"):
            return state
        time.sleep(0.5)
    raise AssertionError(f"training {training_id} not finished in {TRAINING_TIMEOUT_S:.0f} s: {state}")


def check_a_custom_training_is_served(stack: Compose) -> None:
    """Dataset -> training by the trainer service -> the custom model answers in the dataset's labels."""
    rng = np.random.default_rng(7)
    fill_dataset(stack, rng)
    started = post_json(stack, "trainings", {"dataset": CUSTOM_DATASET})
    assert started.status_code == 202, started.text[:300]
    began = time.monotonic()
    state = finished_training(stack, started.json()["id"])
    assert state["status"] == "succeeded", state
    print(
        f"    trained {state['images']} images in {time.monotonic() - began:.1f} s "
        f"(hold-out accuracy {state.get('holdout_accuracy')})"
    )
    for label in CUSTOM_LABELS:
        response = predict(stack.url, f"new-{label}.png", shapes.image(label, rng), model=state["model"])
        assert response.status_code == 200, (label, response.text[:300])
        body = response.json()
        assert (body["model"]["name"], body["model"]["version"]) == (state["model"], state["version"]), body["model"]
        assert body["predictions"][0]["label"] in CUSTOM_LABELS, (label, body["predictions"])


def check_the_trainer_runs_at_low_priority(stack: Compose) -> None:
    """PID 1 of the trainer container is the trainer, niced by TRAINER_NICE (19) as under make up."""
    stat = stack.exec("trainer", "cat", "/proc/1/stat")
    assert stat.returncode == 0, stat.stderr
    command, after = stat.stdout.split("(", 1)[1].rsplit(")", 1)
    nice = int(after.split()[16])  # field 19 of proc(5); the fields after the command start at 3
    cmdline = stack.exec("trainer", "cat", "/proc/1/cmdline").stdout.split("\0")
    assert "ml_worker.trainer" in cmdline and nice == 19, (command, cmdline, nice)


def check_error_envelopes(stack: Compose) -> None:
    assert_envelope(predict(stack.url, "notes.txt", b"not an image at all"), 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    too_big = b"\xff\xd8\xff" + bytes(DEFAULTS.max_upload_bytes + 2 * 1024 * 1024)  # past nginx's limit too
    assert_envelope(predict(stack.url, "big.jpg", too_big), 413, ErrorCode.PAYLOAD_TOO_LARGE)
    assert_envelope(requests.get(f"{stack.url}/api/v1/no-such-thing", timeout=10), 404, ErrorCode.NOT_FOUND)


def check_feedback_survives_a_redis_restart(stack: Compose) -> None:
    name, data, _ = unique_photo()
    prediction = predict(stack.url, name, data)
    assert prediction.status_code == 200, prediction.text[:300]
    body = {"prediction_id": prediction.json()["id"], "correct": False, "expected_class_index": 281}
    created = requests.post(f"{stack.url}/api/v1/feedback", json=body, timeout=10)
    assert created.status_code == 201, created.text[:300]
    stack.run("restart", "redis")
    stack.wait_healthy(expected=SERVICES, timeout_s=120)
    again = requests.get(f"{stack.url}/api/v1/feedback/{created.json()['id']}", timeout=10)
    assert again.status_code == 200, again.text[:300]
    assert again.json() == created.json()


def check_redis_requires_its_password(stack: Compose) -> None:
    anonymous = stack.exec("redis", "redis-cli", "ping")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr, (anonymous.stdout, anonymous.stderr)
    mode = stack.exec("redis", "stat", "-c", "%a %U %G", SECRET_FILE)
    assert mode.stdout.split() == ["440", "redis", "app"], mode.stdout + mode.stderr
    for service in ("api", "worker", "trainer"):  # read-only for them
        touched = stack.exec(service, "sh", "-c", f"echo x > {SECRET_FILE}")
        assert touched.returncode != 0, service


def check_no_upload_reaches_a_disk(stack: Compose) -> None:
    """Jobs and their tensors (image crops) live in the queue Redis, which keeps nothing on disk; the
    store's append-only file (feedback, datasets, heads) holds neither, after the photos classified above."""
    ask = 'REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli config get appendonly; ls -A /data'
    for service in ("redis-queue", "redis-cache"):
        persistence = stack.exec(service, "sh", "-c", ask)
        assert persistence.stdout.split() == ["appendonly", "no"], (service, persistence.stdout, persistence.stderr)
    aof = stack.exec("redis", "grep", "-rlF", "-e", keys.FAMILIES["jobs"], "-e", keys.FAMILIES["tensor"], "/data")
    assert aof.returncode == 1 and not aof.stdout, aof.stdout + aof.stderr  # 1: grep read it and found nothing


def check_every_service_runs_as_non_root(stack: Compose) -> None:
    for service in ("nginx", "api", "worker", "trainer", "redis", "redis-queue", "redis-cache"):
        uid = stack.exec(service, "id", "-u")
        assert uid.returncode == 0 and uid.stdout.strip() not in ("", "0"), (service, uid.stdout, uid.stderr)
        processes = stack.exec(service, "sh", "-c", "stat -c %u /proc/[0-9]*")
        assert "0" not in processes.stdout.split(), (service, processes.stdout)  # no process as root


def check_only_nginx_is_published_on_loopback(stack: Compose) -> None:
    published = {}
    for container in stack.containers():
        info = inspect(container)
        ports = (info["NetworkSettings"]["Ports"] or {}).items()
        published[info["Name"]] = {port: [b["HostIp"] for b in bindings] for port, bindings in ports if bindings}
    nginx = [name for name, ports in published.items() if ports]
    assert len(nginx) == 1 and "nginx" in nginx[0], published
    assert published[nginx[0]] == {"8080/tcp": ["127.0.0.1"]}, published


def reaches(stack: Compose, service: str, address: str, port: int) -> bool:
    """Whether a TCP connection from the service's container to address:port succeeds (3 s limit)."""
    probe = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)"
    return stack.exec(service, "python", "-c", probe, address, str(port)).returncode == 0


def check_internal_network_keeps_the_worker_and_trainer_in(stack: Compose) -> None:
    """The worker and trainer (data network only) cannot leave it: not even nginx, which the api reaches."""
    networks = {name.split("_", 1)[-1]: info for name, info in inspect_networks(stack).items()}
    assert networks["data"]["Internal"] is True and networks["edge"]["Internal"] is False, networks
    nginx = inspect(stack.containers("nginx")[0])
    nginx_ip = next(iter(nginx["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert reaches(stack, "api", nginx_ip, 8080), "the probe itself does not work"
    for service in ("worker", "trainer"):
        assert not reaches(stack, service, nginx_ip, 8080), f"the {service} reached nginx at {nginx_ip}"


def inspect_networks(stack: Compose) -> dict[str, dict]:
    names = docker(
        "network", "ls", "--filter", f"label=com.docker.compose.project={stack.project}", "--format", "{{.Name}}"
    ).stdout.split()
    return {name: json.loads(docker("network", "inspect", name).stdout)[0] for name in names}


Answer = requests.Response | Exception  # an HTTP answer, or the exception instead of one


def classify_many(stack: Compose, count: int, clients: int, answers: list[Answer] | None = None) -> list[Answer]:
    """`count` distinct photos from `clients` threads, each answer appended to `answers` as it comes."""
    photos = [unique_photo(i) for i in range(count)]  # made before the first request is sent
    answers = [] if answers is None else answers
    local = threading.local()

    def one(photo: tuple[str, bytes, frozenset[str]]) -> None:
        local.session = getattr(local, "session", None) or requests.Session()
        try:
            answers.append(predict(stack.url, photo[0], photo[1], local.session))  # list.append is atomic
        except requests.RequestException as exc:
            answers.append(exc)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, photos))
    return answers


def worker_of(answer: requests.Response) -> str:
    return answer.json()["batch"]["worker_id"]


def check_two_workers_share_the_jobs(stack: Compose) -> None:
    stack.run("up", "-d", "--no-recreate", "--scale", "worker=2", timeout=300)
    stack.wait_healthy(expected=SERVICES + 1, timeout_s=180)
    assert requests.get(f"{stack.url}/api/v1/ready", timeout=10).json()["workers"] == 2
    workers: set[str] = set()
    for _ in range(3):  # a burst the first worker could drain alone is retried, at most three times
        answers = classify_many(stack, count=24, clients=8)
        assert all(isinstance(a, requests.Response) and a.status_code == 200 for a in answers), answers
        workers |= {worker_of(a) for a in answers}
        if len(workers) == 2:
            return
    raise AssertionError(f"all jobs went to {workers}")


KILL_LOAD = 120  # requests in the kill test: a few seconds of work for two workers, bounded


def check_a_killed_worker_loses_no_request(stack: Compose) -> None:
    """The worker that just answered is `docker kill`ed under load: every request is still answered 200."""
    containers = stack.containers("worker")  # looked up first: docker-compose takes a second
    answers: list[Answer] = []
    load = threading.Thread(target=classify_many, args=(stack, KILL_LOAD, 8, answers))
    load.start()
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(answers) < KILL_LOAD // 5 and time.monotonic() < deadline:  # in full flow
        time.sleep(0.01)
    assert answers and isinstance(answers[-1], requests.Response) and answers[-1].status_code == 200, answers
    busy_host = worker_of(answers[-1]).rsplit("-", 1)[0]  # worker ids are <container hostname>-<pid>
    victim = next(c for c in containers if c.startswith(busy_host))
    killed_at, answered_before = time.monotonic(), len(answers)
    docker("kill", victim)
    load.join(timeout=4 * CLIENT_TIMEOUT_S)
    assert not load.is_alive(), "requests still hanging"
    failures = [
        a if isinstance(a, Exception) else (a.status_code, a.text[:200])
        for a in answers
        if not isinstance(a, requests.Response) or a.status_code != 200
    ]
    assert len(answers) == KILL_LOAD and not failures, failures
    assert answered_before < KILL_LOAD, "the load was over before the kill"
    redelivered = sum(a.json()["batch"]["deliveries"] > 1 for a in answers)
    print(
        f"    killed {victim[:12]} after {answered_before} of {KILL_LOAD} answers; the rest came within "
        f"{time.monotonic() - killed_at:.1f} s, {redelivered} of them re-delivered"
    )


CHECKS: tuple[Callable[[Compose], None], ...] = (
    check_page,
    check_health_and_ready,
    check_golden_photos,
    check_model_choice_lite2,
    check_a_custom_training_is_served,
    check_the_trainer_runs_at_low_priority,
    check_error_envelopes,
    check_redis_requires_its_password,
    check_no_upload_reaches_a_disk,
    check_every_service_runs_as_non_root,
    check_only_nginx_is_published_on_loopback,
    check_internal_network_keeps_the_worker_and_trainer_in,
    check_feedback_survives_a_redis_restart,
    check_two_workers_share_the_jobs,
    check_a_killed_worker_loses_no_request,
)


# -- the run ---------------------------------------------------------------------------


@dataclass
class Report:
    passed: int = 0
    failed: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, step: Callable[[], object]) -> object:
        started = time.monotonic()
        try:
            return step()
        finally:
            self.timings[name] = time.monotonic() - started

    def check(self, name: str, step: Callable[[], object]) -> bool:
        started = time.monotonic()
        try:
            step()
        except Exception as exc:  # every failure is reported, then the run goes on
            self.failed += 1
            detail = str(exc) or traceback.format_exc(limit=3)
            print(f"FAIL {name} ({time.monotonic() - started:.1f} s): {type(exc).__name__}: {detail}")
            return False
        self.passed += 1
        print(f"PASS {name} ({time.monotonic() - started:.1f} s)")
        return True


def prepare(engine: Engine, stack: Compose, report: Report) -> int:
    """Engine, base image and build; returns Docker's root directory size before the build."""
    install_missing_packages()
    started = report.timed("engine start", engine.ensure)
    print(f"engine: {'started here' if started else 'already running'} ({DOCKER})")
    before = docker_root_bytes()
    if base_image_exists():
        print("base: debian:bookworm-slim present, not rebuilt")
    else:
        report.timed("base image", build_base_image)
        print(f"base: debian:bookworm-slim made with mmdebstrap in {report.timings['base image']:.0f} s")
    report.timed("build", lambda: stack.build(RUN_DIR / "build.log"))
    return before


def run_stack(stack: Compose, report: Report) -> None:
    stack.run("down", "-v", "--remove-orphans", timeout=180)  # leftovers of an interrupted run
    report.timed("up", lambda: stack.run("up", "-d", timeout=300))
    if report.check(
        f"all {SERVICES} services healthy", lambda: report.timed("healthy", lambda: stack.wait_healthy(SERVICES))
    ):
        report.timed("tests", lambda: run_checks(stack, report))


def run_checks(stack: Compose, report: Report) -> None:
    for check in CHECKS:
        report.check(check.__name__.removeprefix("check_").replace("_", " "), lambda c=check: c(stack))


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also through a pipe
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    stack = Compose(
        project=os.environ.get("COMPOSE_TEST_PROJECT", "imgclf-compose-test"),
        port=int(os.environ.get("COMPOSE_TEST_PORT", "18080")),
    )
    engine = Engine(EngineConfig.from_env(RUN_DIR / "dockerd.log"))
    keep_cache_gb = os.environ.get("COMPOSE_BUILD_CACHE_GB", "4")
    report = Report()
    started = time.monotonic()
    try:
        before = prepare(engine, stack, report)
        run_stack(stack, report)
        growth = (docker_root_bytes() - before) / 1e9
        print(f"Docker root directory grew by {growth:.2f} GB during this run")
    except (StepError, EngineError, subprocess.SubprocessError, OSError) as exc:
        report.failed += 1
        print(f"FAIL setup: {exc}")
    finally:
        if engine_answers():
            report.check("tear down (down -v)", lambda: stack.run("down", "-v", "--remove-orphans", timeout=180))
            keep = int(float(keep_cache_gb) * 1e9)
            if report.check("prune old images and build cache", lambda: prune_build_leftovers(keep)):
                print(f"Docker root directory after pruning: {docker_root_bytes() / 1e9:.2f} GB")
        engine.stop()
    report.timings["total"] = time.monotonic() - started
    print("timings: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in report.timings.items()))
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())

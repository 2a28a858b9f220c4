"""Fixtures shared by every suite.

Fast tier (no nginx, no browser), after Flask's tutorial: ``app`` is
``create_app(ApiSettings(...))`` on a real redis-server started once per session and
emptied before each test, ``client`` its test client, and ``worker`` the real worker
code with the real LiteRT models (Lite0 and Lite2) on threads of this process.

Stack tier: real stacks (Redis, workers, gunicorn, nginx) started by ``stack_factory``
on their own ports and run directories, so ``make test`` never touches a stack that
``make up`` started on the default port.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scripts.ports import free_base_port
from scripts.stack import Stack, StackConfig

if TYPE_CHECKING:
    import redis
    from flask import Flask
    from flask.testing import FlaskClient

    from testsupport.inprocess import InProcessWorker, LoadedModels, ServedApp
    from testsupport.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent
TEST_RUN = ROOT / ".test-run"
SESSION_DIR = TEST_RUN / f"session-{os.getpid()}"  # concurrent sessions never share a stack
GOLDEN = ROOT / "ml_worker" / "src" / "ml_worker" / "golden"
WORKER_HEARTBEAT_S = 0.2  # the fast tier's workers beat often: stopping one shows at once

# TEST_PORT_BASE lets concurrent checkouts (e.g. git worktrees) test side by side without racing for ports.
_next_port = [int(os.environ.get("TEST_PORT_BASE", "18100"))]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the processes its fixtures start, so `make test-fast` can leave stacks out."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "stack_factory" in fixtures:
            item.add_marker(pytest.mark.stack)
        if fixtures & {"stack_factory", "redis_server"}:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN


# -- fast tier ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    from testsupport.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server: RedisServer) -> redis.Redis:
    """A client of the session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.client()


@pytest.fixture(scope="session")
def litert_models() -> LoadedModels:
    from testsupport.inprocess import LoadedModels

    return LoadedModels.load()


@pytest.fixture
def make_app(redis_db: redis.Redis, redis_server: RedisServer) -> Callable[..., Flask]:
    """create_app on the session's Redis; keyword arguments override ApiSettings fields."""
    from api import create_app
    from api.settings import ApiSettings

    def make(**settings: object) -> Flask:
        return create_app(ApiSettings(**{"redis_url": redis_server.url, **settings}))

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def start_worker(redis_db: redis.Redis, redis_server: RedisServer, litert_models: LoadedModels) -> Iterator[Callable]:
    """start_worker(delay_s=0, models=None, **WorkerSettings fields): a live in-process worker serving
    ``models`` (names; default Lite0 and Lite2); all stop after the test."""
    from ml_worker.settings import WorkerSettings
    from testsupport.inprocess import InProcessWorker

    started: list[InProcessWorker] = []

    def start(delay_s: float = 0.0, models: tuple[str, ...] | None = None, **settings: object) -> InProcessWorker:
        defaults = {"worker_id": f"in-process-{len(started) + 1}", "heartbeat_interval_s": WORKER_HEARTBEAT_S}
        config = WorkerSettings(redis_url=redis_server.url, **{**defaults, **settings})
        served = litert_models.only(models)
        worker = InProcessWorker(config, served, redis_server.client(), delay_s).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker: Callable[..., InProcessWorker]) -> InProcessWorker:
    return start_worker()


@pytest.fixture
def served_app(app: Flask) -> Iterator[ServedApp]:
    """The app on a real HTTP port, for clients that speak HTTP (the imgclf CLI)."""
    from testsupport.inprocess import ServedApp

    served = ServedApp(app)
    yield served
    served.stop()


# -- stack tier -----------------------------------------------------------------------------------
def _reap_abandoned_sessions() -> None:
    """Stop the stacks of earlier test sessions that died without cleaning up."""
    for session in TEST_RUN.glob("session-*"):
        pid = int(session.name.removeprefix("session-"))
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            for run_dir in (d for d in session.iterdir() if d.is_dir()):
                Stack(StackConfig(run_dir=run_dir)).down()
            shutil.rmtree(session, ignore_errors=True)


def stack_base_port() -> int:
    """Ports for one more stack (nginx, API, three Redis) from TEST_PORT_BASE up: below the kernel's
    ephemeral range, where outgoing connections could take one between the check and the bind."""
    port = free_base_port(_next_port[0])
    _next_port[0] = port + 10
    return port


@pytest.fixture
def stack_port() -> int:
    """The base port for a stack a test starts by itself (e.g. `stack.py up` in a subprocess)."""
    return stack_base_port()


@pytest.fixture(scope="session")
def stack_factory() -> Iterator[Callable[..., Stack]]:
    """Start a stack with its own ports and run dir; all are stopped at session end. Its workers
    serve the models `make up` builds (Lite0 and Lite2), whatever else was built here, unless
    ``env`` names MODELS."""
    from ml_worker.build import DEFAULT_MODELS

    _reap_abandoned_sessions()
    started: list[Stack] = []

    def make(
        name: str,
        workers: int = 1,
        env: dict[str, str] | None = None,
        up: bool = True,
        worker_argv: dict[str, list[str]] | None = None,
        trainer: bool = False,
    ) -> Stack:
        port = stack_base_port()
        config = StackConfig(
            run_dir=SESSION_DIR / name,
            port=port,
            workers=workers,
            env={"MODELS": ",".join(DEFAULT_MODELS), **(env or {})},
            worker_argv=worker_argv or {},
            trainer=trainer,
        )
        stack = Stack(config)
        started.append(stack)
        if up:
            stack.up()
        return stack

    yield make
    for stack in started:
        stack.down()
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def live_stack(stack_factory) -> Stack:
    """The shared full stack for the tests that need nginx or the browser (result cache on)."""
    # The whole suite posts feedback from one address, faster than FEEDBACK_RATE_LIMIT_PER_MINUTE allows.
    return stack_factory("shared", workers=1, env={"FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"})


@pytest.fixture(scope="session")
def trainer_stack(stack_factory) -> Stack:
    """A stack with the trainer process too, shared by the custom-model suites (API and CLI)."""
    return stack_factory("trainer", trainer=True, env={"FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"})

"""Fixtures shared by every suite: real stacks (Redis, worker, gunicorn, nginx)
started on their own ports and run directories, so `make test` never touches a
stack that `make up` started on the default port."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))

from stack import Stack, StackConfig  # noqa: E402

TEST_RUN = ROOT / ".test-run"
SESSION_DIR = TEST_RUN / f"session-{os.getpid()}"  # concurrent sessions never share a stack
GOLDEN = ROOT / "ml_worker" / "src" / "ml_worker" / "golden"


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _ports(start: int) -> int:
    """First base port >= start with base, base+1 and base+2 free."""
    port = start
    while not all(_free(p) for p in (port, port + 1, port + 2)):
        port += 10
    return port


# TEST_PORT_BASE lets concurrent checkouts (e.g. git worktrees) test side by side without racing for ports.
_next_port = [int(os.environ.get("TEST_PORT_BASE", "18100"))]


def _reap_abandoned_sessions() -> None:
    """Stop the stacks of earlier test sessions that died without cleaning up."""
    for session in TEST_RUN.glob("session-*"):
        pid = int(session.name.removeprefix("session-"))
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            for run_dir in (d for d in session.iterdir() if d.is_dir()):
                Stack(StackConfig(run_dir=run_dir)).down()
            shutil.rmtree(session, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_factory() -> Iterator[Callable[..., Stack]]:
    """Start a stack with its own ports and run dir; all are stopped at session end."""
    _reap_abandoned_sessions()
    started: list[Stack] = []

    def make(name: str, workers: int = 1, env: dict[str, str] | None = None, up: bool = True,
             trainer: bool = False) -> Stack:  # fmt: skip
        port = _ports(_next_port[0])
        _next_port[0] = port + 10
        config = StackConfig(run_dir=SESSION_DIR / name, port=port, workers=workers, env=env or {}, trainer=trainer)
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
    """The shared full stack for integration, e2e and CLI tests (result cache on)."""
    return stack_factory("shared", workers=1)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def trainer_stack(stack_factory) -> Stack:
    """A stack with the trainer process too, shared by the custom-model suites (API and CLI)."""
    return stack_factory("trainer", trainer=True)

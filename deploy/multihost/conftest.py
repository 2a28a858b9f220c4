"""Fixtures of the multi-host test: the cluster (cluster.py) for the whole session, torn
down even when a test fails, and the closing line `multihost: N passed, N failed`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.multihost import hosts as hostlib
from deploy.multihost.cluster import ROOT, STATE_ROOT, Cluster, build, why_not_runnable

LOG_TAIL_LINES = 15
_FIGURES: dict[str, str] = {}  # measured by the tests, printed with the summary
_LOG_TAILS: list[str] = []  # the services' last log lines, printed when a test failed


def _log_tails(state_root: Path) -> list[str]:
    lines = []
    for log in sorted(state_root.glob("*/logs/*.log")):
        tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        lines += [f"--- {log.relative_to(state_root)} (last {len(tail)} lines)", *tail]
    return lines


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if reason := why_not_runnable():
        pytest.skip(reason)
    hostlib.reap_abandoned()
    for stale in STATE_ROOT.parent.glob("multihost-*"):  # state of runs that were killed
        if not Path(f"/proc/{stale.name.removeprefix('multihost-')}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    network = hostlib.Network(STATE_ROOT)
    cluster = None
    try:
        cluster = build(network)
        yield cluster
    finally:
        network.destroy()
        if cluster is None or request.session.testsfailed:
            _LOG_TAILS.extend(_log_tails(STATE_ROOT))
        shutil.rmtree(STATE_ROOT, ignore_errors=True)
    left = hostlib.our_namespaces(network.tag)
    assert not left, f"namespaces left behind: {left}"


@pytest.fixture
def client_host(cluster: Cluster) -> Iterator[None]:
    """The test body talks to the cluster from the client host, like any outside client."""
    with hostlib.entered(cluster.host("client").netns):
        yield


@pytest.fixture(scope="session")
def figures() -> dict[str, str]:
    return _FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    """The plain closing line CI reads, counted over the multi-host tests only, and the figures."""
    here = Path(__file__).parent.relative_to(ROOT).as_posix()
    counts = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        reports = terminalreporter.stats.get(outcome, [])
        counts[outcome] = len({r.nodeid for r in reports if getattr(r, "nodeid", "").startswith(here)})
    if not any(counts.values()):
        return
    for line in _LOG_TAILS:
        terminalreporter.write_line(line)
    for name, value in _FIGURES.items():
        terminalreporter.write_line(f"multihost figure: {name}: {value}")
    failed = counts["failed"] + counts["error"]
    terminalreporter.write_line(f"multihost: {counts['passed']} passed, {failed} failed, {counts['skipped']} skipped")

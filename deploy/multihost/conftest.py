"""Fixtures of the multi-host test: the cluster (cluster.py) for the whole session, torn
down even when a test fails, and the closing line `multihost: N passed, N failed`."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import hosts as hostlib
from cluster import ROOT, STATE_ROOT, Cluster, build, why_not_runnable


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if reason := why_not_runnable():
        pytest.skip(reason)
    hostlib.reap_abandoned()
    for stale in STATE_ROOT.parent.glob("multihost-*"):  # state of runs that were killed
        if not Path(f"/proc/{stale.name.removeprefix('multihost-')}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    network = hostlib.Network(STATE_ROOT)
    try:
        yield build(network)
    finally:
        network.destroy()
        shutil.rmtree(STATE_ROOT, ignore_errors=True)
    left = hostlib.our_namespaces(network.tag)
    assert not left, f"namespaces left behind: {left}"


@pytest.fixture
def client_host(cluster: Cluster) -> Iterator[None]:
    """The test body talks to the cluster from the client host, like any outside client."""
    with hostlib.entered(cluster.host("client").netns):
        yield


_FIGURES: dict[str, str] = {}  # measured by the tests, printed with the summary


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
    for name, value in _FIGURES.items():
        terminalreporter.write_line(f"multihost figure: {name}: {value}")
    failed = counts["failed"] + counts["error"]
    terminalreporter.write_line(f"multihost: {counts['passed']} passed, {failed} failed, {counts['skipped']} skipped")

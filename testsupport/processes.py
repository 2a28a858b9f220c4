"""Process figures for tests: resident memory of a process tree, and waiting on a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and its children (e.g. gunicorn's master and workers)."""
    import psutil  # not in every package's test dependencies; only stack tests measure processes

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in (process, *process.children(recursive=True)))


def wait_until(condition: Callable[[], T], timeout_s: float, interval_s: float = 0.02) -> T:
    """Poll until condition() is truthy (returned) or timeout_s passes (returns the last falsy value)."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval_s)
    return value

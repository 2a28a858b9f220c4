"""First-come, first-served slots for the CPU-bound decode step.

A plain semaphore lets a newly arrived thread barge past threads already
waiting, which stretches the latency tail under load; here a released slot is
handed directly to the longest waiter.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class FifoSlots:
    """Each waiter blocks on a lock of its own, held from the start; the releasing thread hands
    its slot over by releasing that lock (one C call, where an Event's set() runs a Condition
    in Python while holding the GIL)."""

    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self._free = slots
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout_s: float | None = None) -> bool:
        """Wait for a slot in arrival order; False when none came within ``timeout_s``."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=-1 if timeout_s is None else timeout_s):
            return True
        with self._lock:
            if turn.acquire(blocking=False):  # handed over just as the wait timed out: the slot is ours
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1

    def __enter__(self) -> FifoSlots:
        self.acquire()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()

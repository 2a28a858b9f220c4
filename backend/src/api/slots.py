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
    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self._free = slots
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout_s: float | None = None) -> bool:
        """Wait for a slot in arrival order; False when none came within ``timeout_s``."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout_s):  # the releasing thread hands its slot over by setting this
            return True
        with self._lock:
            if turn.is_set():  # handed over just as the wait timed out: the slot is ours
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1

    def __enter__(self) -> FifoSlots:
        self.acquire()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()

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

    def __enter__(self) -> FifoSlots:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return self
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # the releasing thread hands its slot over by setting this
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1

"""A real backend that holds every batch a while: the fault tests' slow worker."""

from __future__ import annotations

import time

import numpy as np

from ml_worker.backends import Backend


class DelayedBackend:
    """A real backend that holds every batch ``delay_s`` first, so a batch lasts long enough to
    time out, interrupt or kill; the worker itself has no such knob."""

    def __init__(self, backend: Backend, delay_s: float) -> None:
        self.name = backend.name
        self._backend = backend
        self.delay_s = delay_s

    def predict(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)
        return self._backend.predict(batch)

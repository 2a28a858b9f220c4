"""A real backend that holds every batch a while: the fault tests' slow worker."""

from __future__ import annotations

import time

import numpy as np

from ml_worker.backends import Backend, Outputs
from ml_worker.worker import ServedModel


class DelayedBackend:
    """A real backend that holds every batch ``delay_s`` first, so a batch lasts long enough to
    time out, interrupt or kill; the worker itself has no such knob."""

    def __init__(self, backend: Backend, delay_s: float) -> None:
        self.name = backend.name
        self._backend = backend
        self.delay_s = delay_s

    def run(self, batch: np.ndarray, wide: bool | None = None) -> Outputs:
        time.sleep(self.delay_s)
        return self._backend.run(batch, wide)


def delayed(models: list[ServedModel], delay_s: float) -> list[ServedModel]:
    """The same models, each behind a DelayedBackend (unchanged when delay_s is 0)."""
    if not delay_s:
        return models
    return [ServedModel(DelayedBackend(m.backend, delay_s), m.record) for m in models]

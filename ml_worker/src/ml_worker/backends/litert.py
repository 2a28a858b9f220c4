"""The TensorFlow Lite runtime (ai-edge-litert, XNNPACK); TensorFlow is never imported."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from ml_worker.artifacts import EMBEDDING, LOGITS
from ml_worker.backends import Outputs


class _Plan:
    """One interpreter with its thread count; resizing re-plans the graph, so only on a new batch size."""

    def __init__(self, model_path: Path, num_threads: int) -> None:
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]["index"]
        # Outputs by their signature names: the converter does not promise an order.
        named = self.interpreter.get_signature_runner().get_output_details()
        self.logits, self.embedding = named[LOGITS]["index"], named[EMBEDDING]["index"]
        self.batch = 0

    def run(self, batch: np.ndarray) -> Outputs:
        if batch.shape[0] != self.batch:
            self.interpreter.resize_tensor_input(self.input, batch.shape, strict=False)
            self.interpreter.allocate_tensors()
            self.batch = batch.shape[0]
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(batch, dtype=np.uint8))
        self.interpreter.invoke()
        return Outputs(
            logits=self.interpreter.get_tensor(self.logits).copy(),
            embedding=self.interpreter.get_tensor(self.embedding).copy(),
        )


class LiteRTBackend:
    """A lone image runs on ``num_threads`` (lowest latency while idle); a batch, which means
    jobs are queueing and the API's decoders want the cores, on ``batch_num_threads``, and so
    does a lone image while another batch is inferring (the caller says, with ``wide``).

    An interpreter runs one batch at a time, so ``parallel`` batches at once need as many narrow
    interpreters; the wide one serves whichever caller finds it free, else a narrow one does."""

    name = "litert"

    def __init__(
        self, model_path: Path, num_threads: int, batch_num_threads: int | None = None, parallel: int = 1
    ) -> None:
        narrow_threads = batch_num_threads or num_threads
        self._narrow: queue.SimpleQueue[_Plan] = queue.SimpleQueue()
        for _ in range(parallel):
            self._narrow.put(_Plan(model_path, narrow_threads))
        self._wide = _Plan(model_path, num_threads) if num_threads != narrow_threads else None
        self._wide_free = threading.Lock()

    def run(self, batch: np.ndarray, wide: bool | None = None) -> Outputs:
        wide = batch.shape[0] == 1 if wide is None else wide
        if wide and self._wide is not None and self._wide_free.acquire(blocking=False):
            try:
                return self._wide.run(batch)
            finally:
                self._wide_free.release()
        plan = self._narrow.get()  # waits only when more callers than ``parallel`` run at once
        try:
            return plan.run(batch)
        finally:
            self._narrow.put(plan)

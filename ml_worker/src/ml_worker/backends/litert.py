"""The TensorFlow Lite runtime (ai-edge-litert, XNNPACK); TensorFlow is never imported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class LiteRTBackend:
    name = "litert"

    def __init__(self, model_path: Path, num_threads: int) -> None:
        self._interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = 0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        # Resizing re-plans the graph, so it happens only when the batch size changes.
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, batch.shape, strict=False)
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(batch, dtype=np.uint8))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()

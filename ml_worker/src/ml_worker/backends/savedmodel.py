"""The SavedModel through a tf.function with a fixed signature (full TensorFlow runtime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ml_worker.artifacts import EMBEDDING, LOGITS
from ml_worker.backends import Outputs


class TensorFlowBackend:
    name = "tensorflow"

    def __init__(self, saved_model_dir: Path, input_size: int, num_threads: int) -> None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(num_threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already initialised in this process (tests): keep its pools
            pass
        self._module = tf.saved_model.load(str(saved_model_dir))
        spec = tf.TensorSpec([None, input_size, input_size, 3], tf.uint8, name="image")
        self._serve = tf.function(self._module.serve, input_signature=[spec])

    def run(self, batch: np.ndarray, wide: bool | None = None) -> Outputs:
        """``wide`` is LiteRT's: TensorFlow spreads an op over its own intra-op pool."""
        outputs = self._serve(tf.constant(batch, dtype=tf.uint8))
        return Outputs(logits=outputs[LOGITS].numpy(), embedding=outputs[EMBEDDING].numpy())

"""Inference backends behind one interface: uint8 NHWC batch in, logits out.

``litert`` (default) runs the .tflite with the TensorFlow Lite runtime and never
imports TensorFlow; ``tensorflow`` runs the SavedModel through a tf.function.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ml_worker.artifacts import ModelArtifacts


class Backend(Protocol):
    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(n, 224, 224, 3) uint8 -> (n, 1000) float32 logits."""


def load_backend(
    name: str, artifacts: ModelArtifacts, num_threads: int, batch_num_threads: int | None = None
) -> Backend:
    """``batch_num_threads`` (LiteRT only): threads for batches of 2 or more."""
    if name == "litert":
        from ml_worker.backends.litert import LiteRTBackend

        return LiteRTBackend(artifacts.tflite, num_threads, batch_num_threads)
    if name == "tensorflow":
        from ml_worker.backends.savedmodel import TensorFlowBackend

        return TensorFlowBackend(artifacts.saved_model, num_threads)
    raise ValueError(f"unknown backend {name!r}")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float64)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_k(probabilities: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Best k (class index, probability) of one image, highest first."""
    idx = np.argpartition(-probabilities, k)[:k]
    idx = idx[np.argsort(-probabilities[idx], kind="stable")]
    return [(int(i), float(probabilities[i])) for i in idx]

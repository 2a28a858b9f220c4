"""Inference backends behind one interface: uint8 NHWC batch in, logits and embeddings out.

``litert`` (default) runs the .tflite with the TensorFlow Lite runtime and never
imports TensorFlow; ``tensorflow`` runs the SavedModel through a tf.function.
Both return the model's two outputs, so heads on the embedding need no second pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from imgclf_contract.heads import softmax
from ml_worker.artifacts import ModelArtifacts

__all__ = ["Backend", "Outputs", "load_backend", "softmax", "top_k"]


@dataclass(frozen=True)
class Outputs:
    logits: np.ndarray  # (n, classes) float32
    embedding: np.ndarray  # (n, 1280) float32: the pooled features the classifier reads


class Backend(Protocol):
    """Safe to call from several threads at once (the worker's lanes)."""

    name: str

    def run(self, batch: np.ndarray, wide: bool | None = None) -> Outputs:
        """(n, size, size, 3) uint8 -> both outputs for the n images. ``wide``: on all of its
        threads (nothing else is inferring) or on the batch threads; None: wide for a lone image."""


def load_backend(
    name: str, artifacts: ModelArtifacts, num_threads: int, batch_num_threads: int | None = None, parallel: int = 1
) -> Backend:
    """``batch_num_threads`` (LiteRT only): threads for batches of 2 or more; ``parallel`` (LiteRT only):
    batches it runs at once. A model with no SavedModel (an int8 variant) runs in LiteRT whichever
    backend is named: its integer kernels are LiteRT's."""
    if name == "litert" or (name == "tensorflow" and artifacts.saved_model is None):
        from ml_worker.backends.litert import LiteRTBackend

        return LiteRTBackend(artifacts.tflite, num_threads, batch_num_threads, parallel)
    if name == "tensorflow":
        from ml_worker.backends.savedmodel import TensorFlowBackend

        return TensorFlowBackend(artifacts.saved_model, artifacts.input_size, num_threads)
    raise ValueError(f"unknown backend {name!r}")


def top_k(probabilities: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Best k (class index, probability) of one image, highest first (all of them if fewer)."""
    k = min(k, probabilities.shape[-1])
    idx = np.argpartition(-probabilities, k - 1)[:k]
    idx = idx[np.argsort(-probabilities[idx], kind="stable")]
    return [(int(i), float(probabilities[i])) for i in idx]

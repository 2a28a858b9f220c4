"""Custom heads: a softmax layer on a base model's pooled embedding, shared by trainer, workers and tests.

The trainer stores a head's weights in Redis (``keys.head``) as float32 bytes, so
every worker serving the base model reaches it from any host; a worker applies it
to the embedding of the base model's batch, one matrix product per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import redis

from imgclf_contract import keys


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float64)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Head:
    weights: np.ndarray  # (embedding size, classes) float32
    bias: np.ndarray  # (classes,) float32

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, embedding size) -> (n, classes) probabilities."""
        return softmax(embeddings.astype(np.float32) @ self.weights + self.bias)

    def to_fields(self) -> dict[str, bytes | str]:
        rows, cols = self.weights.shape
        return {
            "shape": f"{rows}x{cols}",
            "w": np.ascontiguousarray(self.weights, dtype="<f4").tobytes(),
            "b": np.ascontiguousarray(self.bias, dtype="<f4").tobytes(),
        }

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Head:
        rows, cols = (int(n) for n in fields[b"shape"].decode().split("x"))
        weights = np.frombuffer(fields[b"w"], dtype="<f4").reshape(rows, cols)
        return cls(weights, np.frombuffer(fields[b"b"], dtype="<f4").reshape(cols))


def load_head(client: redis.Redis, name: str, version: str) -> Head | None:
    fields = client.hgetall(keys.head(name, version))
    return Head.from_fields(fields) if fields else None

"""Golden photos from scikit-image's data (public domain / CC0) and what every model must yield.

The build checks its own output against these before declaring success, and the
tests and benchmarks use them; the expectations, and the way they become model
inputs (``tensors(size)``), live here once. The rocket photo is ambiguous
(Lite2's first guess is "drilling platform", the gantry), so there an accepted
class among the first three answers is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf_contract.preprocess import INPUT_SIZE, preprocess

DIR = Path(__file__).resolve().parent
MAX_PIXELS = 10**8  # far above any golden photo: the limit never decides anything here


@dataclass(frozen=True)
class Golden:
    file: str
    accepted: frozenset[str]
    within_top: int = 1  # an accepted class must be among this many best answers
    min_score: float = 0.0  # ... with at least this probability

    @property
    def path(self) -> Path:
        return DIR / self.file

    def failure(self, ranked: list[tuple[str, float]]) -> str | None:
        """Why the model's (label, probability) answers, best first, miss the expectation; None if met."""
        hits = [(name, score) for name, score in ranked[: self.within_top] if name in self.accepted]
        if hits and hits[0][1] >= self.min_score:
            return None
        return f"{self.file}: {ranked[: self.within_top]} has none of {sorted(self.accepted)} at >= {self.min_score}"


PHOTOS: tuple[Golden, ...] = (
    Golden("coffee.png", frozenset({"espresso"}), min_score=0.5),
    Golden("chelsea.png", frozenset({"tiger cat", "tabby", "Egyptian cat"})),
    Golden("rocket.jpg", frozenset({"missile", "projectile", "space shuttle"}), within_top=3),
)


def tensors(size: int = INPUT_SIZE) -> np.ndarray:
    """The photos through the real preprocessing for a model of this input size, in PHOTOS order:
    (n, size, size, 3) uint8."""
    return np.stack([preprocess(photo.path.read_bytes(), MAX_PIXELS, size=size).tensor for photo in PHOTOS])

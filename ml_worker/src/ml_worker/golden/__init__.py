"""Golden photos from scikit-image's data (public domain / CC0) and what they must yield.

The build checks its own output against these before declaring success, and the
tests and benchmarks use them; the expectations, and the way they become model
inputs (``tensors()``), live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf_contract.preprocess import preprocess

DIR = Path(__file__).resolve().parent
MAX_PIXELS = 10**8  # far above any golden photo: the limit never decides anything here


@dataclass(frozen=True)
class Golden:
    file: str
    accepted_top1: frozenset[str]
    min_score: float = 0.0

    @property
    def path(self) -> Path:
        return DIR / self.file


PHOTOS: tuple[Golden, ...] = (
    Golden("coffee.png", frozenset({"espresso"}), min_score=0.9),
    Golden("chelsea.png", frozenset({"tiger cat", "tabby", "Egyptian cat"})),
    Golden("rocket.jpg", frozenset({"missile", "projectile"})),
)


def tensors() -> np.ndarray:
    """The photos through the real preprocessing, in PHOTOS order: (n, 224, 224, 3) uint8."""
    return np.stack([preprocess(photo.path.read_bytes(), max_pixels=MAX_PIXELS).tensor for photo in PHOTOS])

"""Golden photos from scikit-image's data (public domain / CC0) and what they must yield.

The build checks its own output against these before declaring success, and the
tests use them; the expectations live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DIR = Path(__file__).resolve().parent


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

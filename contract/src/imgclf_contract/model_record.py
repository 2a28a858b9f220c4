"""What a worker publishes about the model it serves: card facts and the label table.

The API reads it from Redis (keyed by name and version), so the API needs no
model files and always names classes from the version that answered.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

IMAGENET_CLASSES = 1000  # the label space of the served models: class indices 0-999


def version_key(version: str) -> tuple[int, str]:
    """Sort key for model versions: numeric ones numerically ("10" after "9"), newest last."""
    return (int(version), "") if version.isdigit() else (-1, version)


@dataclass(frozen=True)
class ModelRecord:
    name: str
    version: str
    input_size: int
    preprocessing: str
    num_classes: int
    labels: list[dict]  # {"index", "wnid", "name", "synonyms"}

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> ModelRecord:
        return cls(**json.loads(raw))

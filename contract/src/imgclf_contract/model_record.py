"""Model names and what a worker publishes about each model it serves: card facts and labels.

The API reads records from Redis (keyed by name and version), so the API needs
no model files, preprocesses each upload at the input size of the model that
will answer, and always names classes from the version that answered.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields

NAME_PATTERN = r"[a-z][a-z0-9_]{0,63}"
VERSION_PATTERN = r"[0-9]{1,9}"
_REF = re.compile(rf"(?P<name>{NAME_PATTERN})(?::(?P<version>{VERSION_PATTERN}))?")

PRECISIONS = ("float32", "int8")  # a model's weights and arithmetic; int8: full-integer quantised
IMAGENET_CLASSES = 1000  # the label space of the served models: class indices 0-999


def version_key(version: str) -> tuple[int, str]:
    """Sort key for model versions: numeric ones numerically ("10" after "9"), newest last."""
    return (int(version), "") if version.isdigit() else (-1, version)


def parse_model_ref(ref: str) -> tuple[str, str]:
    """``name`` or ``name:version`` -> (name, version or ""); ValueError for anything else."""
    match = _REF.fullmatch(ref)
    if match is None:
        shown = ref if len(ref) <= 80 else ref[:80] + "..."
        raise ValueError(
            f"{shown!r} is not a model reference: expected a name (lower-case letters, digits, '_'; "
            "at most 64) optionally followed by ':' and a version number"
        )
    return match["name"], match["version"] or ""


@dataclass(frozen=True)
class ModelRecord:
    name: str
    version: str
    input_size: int
    preprocessing: str
    num_classes: int
    labels: list[dict]  # {"index", "wnid", "name", "synonyms"}; wnid None for a custom model's labels
    embedding_size: int = 0
    precision: str = "float32"  # of the weights and arithmetic: "float32", or "int8" for a quantised variant
    published_top1: float | None = None
    measured: dict | None = None  # accuracy on the labelled sample set, as the model card states it
    # A custom model: a head on the embedding of ``base``:``base_version``, published by the trainer.
    base: str = ""
    base_version: str = ""
    report: dict | None = None  # the training's hold-out report (per-label precision/recall, confusions)
    dataset_fingerprint: str = ""
    created_at: str = ""

    @property
    def is_custom(self) -> bool:
        return bool(self.base)

    @property
    def exportable(self) -> bool:
        """A custom model whose standalone .tflite can be built: the fused model is made from its base's
        Keras model, which an int8 variant (a .tflite only) does not have."""
        return self.is_custom and self.precision == "float32"

    @property
    def backbone(self) -> tuple[str, str]:
        """The model version whose worker runs this one (and whose stream its jobs queue on)."""
        return (self.base, self.base_version) if self.base else (self.name, self.version)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> ModelRecord:
        """Fields a newer worker added are ignored, so upgrades can roll."""
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

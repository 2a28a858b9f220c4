"""Where the built models live and what their model cards say (no TensorFlow needed).

Layout follows TensorFlow Serving: ``<ARTIFACTS_DIR>/<model name>/<version>/``
holds the SavedModel itself (``saved_model.pb``, ``variables/``) beside
``model.keras``, ``model.tflite``, ``labels.json`` and ``model_card.json``; a
quantised variant (``<name>_int8``, ``ml_worker.quantise``) has only the last three.
A worker serves every model found there (or those named in ``MODELS``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from imgclf_contract.model_record import version_key
from ml_worker.labels import Label, read_labels
from ml_worker.settings import WorkerSettings

CARD = "model_card.json"
LABELS = "labels.json"
KERAS = "model.keras"
TFLITE = "model.tflite"
# The two outputs of every model (.keras, SavedModel signature, .tflite signature), by name.
LOGITS = "logits"
EMBEDDING = "embedding"


class ArtifactsMissing(FileNotFoundError):
    """The model has not been built (run ``python -m ml_worker.build``)."""


@dataclass(frozen=True)
class ModelArtifacts:
    directory: Path
    card: dict

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def precision(self) -> str:
        """ "int8" for a quantised variant (a .tflite only); cards from before precisions existed are float."""
        return self.card.get("precision", "float32")

    @property
    def input_size(self) -> int:
        return int(self.card["input_size"])

    @property
    def tflite(self) -> Path:
        return self.directory / TFLITE

    @property
    def saved_model(self) -> Path | None:
        """The SavedModel directory; None for a quantised variant, which is a .tflite only."""
        return self.directory if (self.directory / "saved_model.pb").is_file() else None

    def labels(self) -> list[Label]:
        return read_labels(self.directory / LABELS)


def version_dir(artifacts_dir: Path, name: str, version: str = "") -> Path:
    """The given version of a model, or the highest numbered one present."""
    base = artifacts_dir / name
    if version:
        return base / version
    versions = sorted((p for p in base.glob("*") if p.name.isdigit()), key=lambda p: version_key(p.name))
    if not versions:
        raise ArtifactsMissing(f"no versions of {name} under {artifacts_dir}; run `python -m ml_worker.build`")
    return versions[-1]


def load(artifacts_dir: Path, name: str, version: str = "") -> ModelArtifacts:
    """One model version (the newest when ``version`` is empty)."""
    card_path = version_dir(artifacts_dir, name, version) / CARD
    if not card_path.is_file():
        raise ArtifactsMissing(f"{card_path} is missing; run `python -m ml_worker.build`")
    return ModelArtifacts(card_path.parent, json.loads(card_path.read_text()))


def built_names(artifacts_dir: Path) -> list[str]:
    """Models with at least one finished version (a model card) under ``artifacts_dir``."""
    if not artifacts_dir.is_dir():
        return []
    return sorted(p.parent.parent.name for p in artifacts_dir.glob(f"*/*/{CARD}") if p.parent.name.isdigit())


def load_all(settings: WorkerSettings) -> list[ModelArtifacts]:
    """What a worker serves: MODELS (``name`` or ``name:version`` each), else every built model."""
    wanted = settings.models or tuple(dict.fromkeys(built_names(settings.artifacts_dir)))
    if not wanted:
        raise ArtifactsMissing(f"no models under {settings.artifacts_dir}; run `python -m ml_worker.build`")
    models = []
    for entry in wanted:
        name, _, version = entry.partition(":")
        models.append(load(settings.artifacts_dir, name, version))
    return models

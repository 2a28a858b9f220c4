"""Where the built model lives and what its model card says (no TensorFlow needed).

Layout follows TensorFlow Serving: ``<ARTIFACTS_DIR>/<model name>/<version>/``
holds the SavedModel itself (``saved_model.pb``, ``variables/``) beside
``model.keras``, ``model.tflite``, ``labels.json`` and ``model_card.json``.
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
    def tflite(self) -> Path:
        return self.directory / TFLITE

    @property
    def saved_model(self) -> Path:
        return self.directory

    def labels(self) -> list[Label]:
        return read_labels(self.directory / LABELS)


def version_dir(settings: WorkerSettings) -> Path:
    """The configured version, or the highest numbered one present."""
    base = settings.artifacts_dir / settings.model_name
    if settings.model_version:
        return base / settings.model_version
    versions = sorted((p for p in base.glob("*") if p.name.isdigit()), key=lambda p: version_key(p.name))
    if not versions:
        raise ArtifactsMissing(f"no model versions under {base}; run `python -m ml_worker.build`")
    return versions[-1]


def load(settings: WorkerSettings) -> ModelArtifacts:
    directory = version_dir(settings)
    card_path = directory / CARD
    if not card_path.is_file():
        raise ArtifactsMissing(f"{card_path} is missing; run `python -m ml_worker.build`")
    return ModelArtifacts(directory, json.loads(card_path.read_text()))

"""The ordinary-client stage's fixed inputs: the six named photos (or a recorded fallback) and the float model."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest import ordinary
from ml_worker import artifacts
from ml_worker.settings import WorkerSettings

SETTINGS = WorkerSettings.from_env()


def test_without_the_imagenet_sample_generated_photos_stand_in_and_the_reason_is_recorded(tmp_path: Path) -> None:
    choice = ordinary.reference_photos(tmp_path / "absent")
    assert len(choice.photos) == len(ordinary.REFERENCE_PHOTOS)
    assert choice.source.startswith("generated")
    assert choice.fallback_reason == f"6 of the 6 reference photos not found in {tmp_path / 'absent'}"


def test_the_six_named_imagenet_photos_are_read_where_they_are() -> None:
    if not (SETTINGS.imagenet_sample_dir / ordinary.REFERENCE_PHOTOS[0]).is_file():
        pytest.skip(f"no ImageNet sample at {SETTINGS.imagenet_sample_dir} (IMAGENET_SAMPLE_DIR)")
    choice = ordinary.reference_photos(SETTINGS.imagenet_sample_dir)
    assert choice.fallback_reason is None
    assert [p.name for p in choice.photos] == list(ordinary.REFERENCE_PHOTOS)
    assert all(p.format == "JPEG" and p.data[:2] == b"\xff\xd8" and p.width >= 300 for p in choice.photos)


def test_the_reference_model_is_float() -> None:
    model = artifacts.load(SETTINGS.artifacts_dir, ordinary.REFERENCE_MODEL)
    assert ordinary.quantised_tensors(model.tflite) == 0

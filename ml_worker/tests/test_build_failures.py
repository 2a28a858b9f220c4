"""A failed build never leaves a model where the worker would load it."""

from __future__ import annotations

import dataclasses

import pytest

from ml_worker import artifacts, build
from ml_worker.pth_reader import WeightsFileError
from ml_worker.settings import WorkerSettings


def pin_wrong_hash(monkeypatch, name: str, sha256: str) -> None:
    weights = {**build.WEIGHTS, name: dataclasses.replace(build.WEIGHTS[name], sha256=sha256)}
    monkeypatch.setattr(build, "WEIGHTS", weights)


def test_wrong_weights_hash_fails_cleanly_and_leaves_nothing(tmp_path, monkeypatch):
    pin_wrong_hash(monkeypatch, "efficientnet_lite0", "f" * 64)
    settings = WorkerSettings.from_env({"ARTIFACTS_DIR": str(tmp_path)})
    with pytest.raises(WeightsFileError, match="does not match the pinned"):
        build.build(settings, ("efficientnet_lite0",))
    assert list((tmp_path / "efficientnet_lite0").iterdir()) == []
    with pytest.raises(artifacts.ArtifactsMissing, match=r"ml_worker\.build"):
        artifacts.load(settings.artifacts_dir, "efficientnet_lite0")
    with pytest.raises(artifacts.ArtifactsMissing, match="no models"):
        artifacts.load_all(settings)


def test_build_command_reports_failure_with_exit_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path))
    pin_wrong_hash(monkeypatch, "efficientnet_lite2", "0" * 64)
    assert build.main(["--model", "efficientnet_lite2"]) == 1

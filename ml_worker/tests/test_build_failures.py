"""A failed build never leaves a model where the worker would load it."""

from __future__ import annotations

import pytest

from ml_worker import artifacts, build
from ml_worker.pth_reader import WeightsFileError
from ml_worker.settings import WorkerSettings


def test_wrong_weights_hash_fails_cleanly_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "WEIGHTS_SHA256", "f" * 64)
    settings = WorkerSettings.from_env({"ARTIFACTS_DIR": str(tmp_path)})
    with pytest.raises(WeightsFileError, match="does not match the pinned"):
        build.build(settings)
    assert list((tmp_path / "efficientnet_lite0").iterdir()) == []
    with pytest.raises(artifacts.ArtifactsMissing, match=r"ml_worker\.build"):
        artifacts.load(settings)


def test_build_command_reports_failure_with_exit_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setattr(build, "WEIGHTS_SHA256", "0" * 64)
    assert build.main([]) == 1

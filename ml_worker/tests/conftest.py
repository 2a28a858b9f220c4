"""Fixtures shared by ml_worker's tests: the default model, and every built-in model in turn."""

from __future__ import annotations

import pytest

from ml_worker import artifacts
from ml_worker.settings import WorkerSettings

BUILT_IN = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test asking for ``each_model`` runs once per built-in model."""
    if "each_model" in metafunc.fixturenames:
        metafunc.parametrize("each_model", BUILT_IN, indirect=True, scope="module")


@pytest.fixture(scope="module")
def each_model(request: pytest.FixtureRequest) -> artifacts.ModelArtifacts:
    """A built model, or a skip saying how to build it (Lite1 is built only on request)."""
    try:
        return artifacts.load(WorkerSettings.from_env().artifacts_dir, request.param)
    except artifacts.ArtifactsMissing:
        pytest.skip(f"{request.param} is not built: make artifacts BUILT_MODELS={request.param}")


@pytest.fixture(scope="module")
def default_model() -> artifacts.ModelArtifacts:
    settings = WorkerSettings.from_env()
    return artifacts.load(settings.artifacts_dir, settings.default_model)

"""The Keras port and both serving backends against the PyTorch original's logits.

reference_logits.npz was produced once by ml_worker/reference/make_reference_logits.py
with PyTorch and the original network, on the golden photos after our preprocessing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml_worker import artifacts, golden
from ml_worker.backends import load_backend, softmax, top_k
from ml_worker.settings import WorkerSettings

REFERENCE = Path(__file__).parent / "data" / "reference_logits.npz"
TOLERANCE = 1e-4
TENSORFLOW = pytest.mark.slow  # loads TensorFlow (3-6 s and 500 MB): `make test` only, not `make test-fast`


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    data = np.load(REFERENCE)
    return {"files": list(data["files"]), "tensors": data["tensors"], "logits": data["logits"]}


@pytest.fixture(scope="module")
def model() -> artifacts.ModelArtifacts:
    return artifacts.load(WorkerSettings.from_env())


def test_reference_inputs_are_todays_preprocessing(reference):
    """If preprocessing changed, the reference would be comparing different inputs."""
    assert reference["files"] == [p.file for p in golden.PHOTOS]
    np.testing.assert_array_equal(golden.tensors(), reference["tensors"])


@TENSORFLOW
def test_keras_model_matches_pytorch_original(reference, model):
    import keras

    keras_model = keras.saving.load_model(model.directory / artifacts.KERAS)
    logits = np.asarray(keras_model.predict(reference["tensors"], verbose=0))
    assert np.abs(logits - reference["logits"]).max() <= TOLERANCE


@pytest.mark.parametrize("backend", ["litert", pytest.param("tensorflow", marks=TENSORFLOW)])
def test_backend_matches_pytorch_original(reference, model, backend):
    logits = load_backend(backend, model, num_threads=2).predict(reference["tensors"])
    assert logits.shape == (3, 1000) and logits.dtype == np.float32
    assert np.abs(logits - reference["logits"]).max() <= TOLERANCE


@TENSORFLOW
def test_backends_give_the_same_top5(reference, model):
    """Parity of what users see: same classes, probabilities within 1e-4."""
    batch = reference["tensors"]
    lite = softmax(load_backend("litert", model, 2).predict(batch))
    tf = softmax(load_backend("tensorflow", model, 2).predict(batch))
    for a, b in zip(lite, tf, strict=True):
        top_a, top_b = top_k(a, 5), top_k(b, 5)
        assert [i for i, _ in top_a] == [i for i, _ in top_b]
        assert max(abs(pa - pb) for (_, pa), (_, pb) in zip(top_a, top_b, strict=True)) <= 1e-4


def test_golden_photos_are_named_correctly(model):
    labels = model.labels()
    backend = load_backend("litert", model, 2)
    batch = golden.tensors()
    for photo, probs in zip(golden.PHOTOS, softmax(backend.predict(batch)), strict=True):
        (best, score), *_ = top_k(probs, 5)
        assert labels[best].name in photo.accepted_top1
        assert score >= photo.min_score


def test_variable_batch_sizes_agree_with_batch_one(model):
    """Batches run on their own single-threaded interpreter; results must not depend on it."""
    backend = load_backend("litert", model, num_threads=2, batch_num_threads=1)
    batch = np.concatenate([golden.tensors()] * 3)
    whole = backend.predict(batch)
    singles = np.concatenate([backend.predict(batch[i : i + 1]) for i in range(len(batch))])
    assert np.abs(whole - singles).max() <= TOLERANCE


def test_litert_path_never_imports_tensorflow(model):
    code = (
        "import sys, numpy as np\n"
        "from ml_worker import artifacts\n"
        "from ml_worker.backends import load_backend\n"
        "from ml_worker.settings import WorkerSettings\n"
        "import ml_worker.worker, ml_worker.queue\n"
        "b = load_backend('litert', artifacts.load(WorkerSettings.from_env()), 1)\n"
        "b.predict(np.zeros((2, 224, 224, 3), np.uint8))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'torch'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

"""The Keras port and both serving backends against the PyTorch originals, on both outputs.

reference_<model>.npz was produced once by ml_worker/reference/make_reference_logits.py
with PyTorch and the original network, on the golden photos after our preprocessing:
the logits and the pooled 1280-d embedding the classifier reads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml_worker import artifacts, golden
from ml_worker.backends import load_backend, softmax, top_k

DATA = Path(__file__).parent / "data"
TOLERANCE = 1e-4
OUTPUTS = ("logits", "embedding")
TENSORFLOW = pytest.mark.slow  # loads TensorFlow (3-6 s and 500 MB): `make test` only, not `make test-fast`


@pytest.fixture(scope="module")
def reference(each_model: artifacts.ModelArtifacts) -> dict[str, np.ndarray]:
    data = np.load(DATA / f"reference_{each_model.name}.npz")
    return {key: data[key] for key in ("files", "tensors", *OUTPUTS)}


def test_reference_inputs_are_todays_preprocessing(reference, each_model):
    """If preprocessing changed, the reference would be comparing different inputs. The reference
    was made with round 1's whole-image resize; resampling only the crop's region (round 2) moves
    a few pixels by one level (Pillow's float box coordinates), which is the contract's tolerance."""
    assert list(reference["files"]) == [p.file for p in golden.PHOTOS]
    assert reference["tensors"].shape[1:] == (each_model.input_size, each_model.input_size, 3)
    difference = np.abs(golden.tensors(each_model.input_size).astype(np.int16) - reference["tensors"])
    assert difference.max() <= 1 and np.count_nonzero(difference) <= 0.001 * difference.size


def test_model_card_states_its_input_size(each_model):
    card = each_model.card
    assert card["input"]["shape"] == [None, each_model.input_size, each_model.input_size, 3]
    assert str(round(each_model.input_size / 0.875)) in card["preprocessing"]
    assert card["embedding_size"] == 1280 and card["num_classes"] == 1000


@TENSORFLOW
def test_keras_model_matches_pytorch_original(reference, each_model):
    import keras

    keras_model = keras.saving.load_model(each_model.directory / artifacts.KERAS)
    outputs = keras_model.predict(reference["tensors"], verbose=0)
    for name in OUTPUTS:
        assert np.abs(np.asarray(outputs[name]) - reference[name]).max() <= TOLERANCE, name


@pytest.mark.parametrize("backend", ["litert", pytest.param("tensorflow", marks=TENSORFLOW)])
def test_backend_matches_pytorch_original(reference, each_model, backend):
    outputs = load_backend(backend, each_model, num_threads=2).run(reference["tensors"])
    assert outputs.logits.shape == (3, 1000) and outputs.logits.dtype == np.float32
    assert outputs.embedding.shape == (3, 1280) and outputs.embedding.dtype == np.float32
    for name in OUTPUTS:
        assert np.abs(getattr(outputs, name) - reference[name]).max() <= TOLERANCE, name


@TENSORFLOW
def test_backends_give_the_same_top5(reference, each_model):
    """Parity of what users see: same classes, probabilities within 1e-4."""
    batch = reference["tensors"]
    lite = softmax(load_backend("litert", each_model, 2).run(batch).logits)
    tf = softmax(load_backend("tensorflow", each_model, 2).run(batch).logits)
    for a, b in zip(lite, tf, strict=True):
        top_a, top_b = top_k(a, 5), top_k(b, 5)
        assert [i for i, _ in top_a] == [i for i, _ in top_b]
        assert max(abs(pa - pb) for (_, pa), (_, pb) in zip(top_a, top_b, strict=True)) <= 1e-4


def test_golden_photos_are_named_correctly(each_model):
    labels = each_model.labels()
    backend = load_backend("litert", each_model, 2)
    probabilities = softmax(backend.run(golden.tensors(each_model.input_size)).logits)
    for photo, probs in zip(golden.PHOTOS, probabilities, strict=True):
        assert photo.failure([(labels[i].name, p) for i, p in top_k(probs, 5)]) is None


@TENSORFLOW
def test_classifier_reads_the_embedding(each_model):
    """The embedding output is the classifier's input: logits = embedding @ W + b, with the built weights."""
    import keras

    dense = keras.saving.load_model(each_model.directory / artifacts.KERAS).get_layer("logits")
    kernel, bias = dense.get_weights()
    outputs = load_backend("litert", each_model, 2).run(golden.tensors(each_model.input_size))
    np.testing.assert_allclose(outputs.embedding @ kernel + bias, outputs.logits, atol=TOLERANCE)


def test_variable_batch_sizes_agree_with_batch_one(each_model):
    """Batches run on their own single-threaded interpreter; results must not depend on it."""
    backend = load_backend("litert", each_model, num_threads=2, batch_num_threads=1)
    batch = np.concatenate([golden.tensors(each_model.input_size)] * 3)
    whole = backend.run(batch)
    singles = [backend.run(batch[i : i + 1]) for i in range(len(batch))]
    for name in OUTPUTS:
        stacked = np.concatenate([getattr(s, name) for s in singles])
        assert np.abs(getattr(whole, name) - stacked).max() <= TOLERANCE, name


def test_litert_path_never_imports_tensorflow():
    code = (
        "import sys, numpy as np\n"
        "from ml_worker import artifacts\n"
        "from ml_worker.backends import load_backend\n"
        "from ml_worker.settings import WorkerSettings\n"
        "import ml_worker.worker, ml_worker.queue\n"
        "for model in artifacts.load_all(WorkerSettings.from_env()):\n"
        "    b = load_backend('litert', model, 1)\n"
        "    b.run(np.zeros((2, model.input_size, model.input_size, 3), np.uint8))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'torch'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

"""The int8 variants as built: really full-integer, the float model's answers, the stated accuracy,
and calibrated on neither the evaluation nor the golden photos."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from ml_worker import artifacts, calibration, golden, quantise
from ml_worker.accuracy import labelled_photos
from ml_worker.backends import softmax, top_k
from ml_worker.backends.litert import LiteRTBackend
from ml_worker.build import FLOAT_MODELS, INT8_SUFFIX
from ml_worker.settings import WorkerSettings


@pytest.fixture(scope="module", params=FLOAT_MODELS)
def pair(request: pytest.FixtureRequest) -> tuple[artifacts.ModelArtifacts, artifacts.ModelArtifacts]:
    """(float model, its int8 variant), or a skip saying how to build them."""
    directory = WorkerSettings.from_env().artifacts_dir
    try:
        return artifacts.load(directory, request.param), artifacts.load(directory, request.param + INT8_SUFFIX)
    except artifacts.ArtifactsMissing:
        pytest.skip(f"make artifacts BUILT_MODELS='{request.param} {request.param}{INT8_SUFFIX}'")


def run(model: artifacts.ModelArtifacts, batch: np.ndarray):
    return LiteRTBackend(model.tflite, num_threads=2).run(batch)


def test_the_tflite_is_full_integer_with_the_normalisation_as_its_input(pair):
    source, int8 = pair
    interpreter = Interpreter(model_path=str(int8.tflite))
    (entry,) = interpreter.get_input_details()
    assert entry["dtype"] == np.uint8 and entry["shape"].tolist() == [1, int8.input_size, int8.input_size, 3]
    scale, zero_point = entry["quantization"]
    assert (scale, zero_point) == (1 / 128, 127)  # q -> (q - 127) / 128: the model's normalisation, exactly
    assert {o["dtype"] for o in interpreter.get_output_details()} == {np.float32}
    produced = {i for op in interpreter._get_ops_details() for i in op["outputs"]}
    constants = [t for t in interpreter.get_tensor_details() if t["index"] not in produced | {entry["index"]}]
    filters = [t for t in constants if len(t["shape"]) == 4]
    assert len(filters) >= 49 and {t["dtype"] for t in filters} == {np.int8}  # every convolution's weights
    assert all(len(t["quantization_parameters"]["scales"]) > 1 for t in filters)  # a scale per channel
    assert not [t["name"] for t in constants if t["dtype"] == np.float32]  # no float weights anywhere
    kernels = {op["op_name"] for op in interpreter._get_ops_details()}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= kernels
    assert quantise.integer_report(int8.tflite)["ops"]["DEQUANTIZE"] == 2  # the two outputs only
    assert int8.tflite.stat().st_size < source.tflite.stat().st_size / 3


def test_the_check_refuses_a_float_model(pair):
    source, _ = pair
    with pytest.raises(quantise.QuantiseCheckFailed, match=r"input is uint8 scale 0\.0"):
        quantise.integer_report(source.tflite)  # uint8 input, but no quantisation: float kernels follow


def test_int8_gives_the_float_models_answers_on_the_golden_photos(pair):
    source, int8 = pair
    batch = golden.tensors(source.input_size)
    theirs, ours = run(source, batch), run(int8, batch)
    assert np.abs(ours.logits - theirs.logits).max() <= quantise.MAX_LOGIT_ERROR
    for photo, mine, reference in zip(golden.PHOTOS, ours.logits, theirs.logits, strict=True):
        ranked, float_ranked = top_k(softmax(mine), 5), top_k(softmax(reference), 5)
        assert ranked[0][0] in quantise.float_top1(reference), (photo.file, ranked, float_ranked)
        assert len({i for i, _ in ranked} & {i for i, _ in float_ranked}) >= quantise.MIN_TOP5_OVERLAP
        if source.name == "efficientnet_lite0":  # no near-tie on any golden photo: the very same first answer
            assert ranked[0][0] == float_ranked[0][0]
    cosine = (ours.embedding * theirs.embedding).sum(1) / (
        np.linalg.norm(ours.embedding, axis=1) * np.linalg.norm(theirs.embedding, axis=1)
    )
    assert cosine.min() > 0.97, cosine  # measured 0.983-0.998


def test_the_card_says_what_it_is_and_its_accuracy_is_within_its_bound(pair):
    source, int8 = pair
    card = int8.card
    assert (card["name"], card["precision"], card["input_size"]) == (
        source.name + INT8_SUFFIX,
        "int8",
        224 if source.name.endswith("0") else 260,
    )
    assert card["preprocessing"] == source.card["preprocessing"] and int8.labels() == source.labels()
    origin = card["quantised_from"]
    assert (origin["name"], origin["version"]) == (source.name, source.version)
    assert origin["tflite_sha256"] == hashlib.sha256(source.tflite.read_bytes()).hexdigest()  # this float build
    assert card["quantisation"]["calibration"]["inputs"] == len(calibration.PHOTOS) * (calibration.CROPS_PER_PHOTO + 1)
    if card["measured"] is None or source.card.get("measured") is None:
        pytest.skip("built without IMAGENET_SAMPLE_DIR: no measured accuracy to compare")
    bound = card["accuracy_bound"]["max_top1_drop_vs_float"]
    assert card["measured"]["images"] == source.card["measured"]["images"] == 500
    assert card["measured"]["top1"] >= source.card["measured"]["top1"] - bound


def test_the_default_int8_model_is_within_half_a_point_of_float():
    """The rule DEFAULT_MODEL follows (README, Models): int8 Lite0 only while its top-1 on the sample set is
    within 0.5 points of float Lite0's."""
    settings = WorkerSettings.from_env()
    default = artifacts.load(settings.artifacts_dir, settings.default_model)
    assert default.precision == "int8"
    source = artifacts.load(settings.artifacts_dir, default.card["quantised_from"]["name"])
    if default.card["measured"] is None or source.card.get("measured") is None:
        pytest.skip("built without IMAGENET_SAMPLE_DIR: no measured accuracy to compare")
    assert default.card["measured"]["top1"] >= source.card["measured"]["top1"] - 0.005


def test_calibration_photos_are_neither_golden_nor_evaluation_photos():
    def digest(path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    calibrating = {digest(p.path) for p in calibration.PHOTOS}
    assert len(calibrating) == len(calibration.PHOTOS)  # all installed, all different
    assert not calibrating & {digest(p.path) for p in golden.PHOTOS}
    assert not {p.path.name for p in calibration.PHOTOS} & {p.file for p in golden.PHOTOS}
    evaluation = labelled_photos(WorkerSettings.from_env().imagenet_sample_dir)
    assert not calibrating & {digest(path) for path, _ in evaluation}


def test_calibration_inputs_are_deterministic_contract_tensors():
    first, again = calibration.tensors(224, crops_per_photo=2), calibration.tensors(224, crops_per_photo=2)
    assert first.shape == (3 * len(calibration.PHOTOS), 224, 224, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert len({hashlib.sha256(t.tobytes()).hexdigest() for t in first}) == len(first)  # crops really differ
    assert first.min() == 0 and first.max() == 255  # the input's whole range: its quantisation is calibrated on it

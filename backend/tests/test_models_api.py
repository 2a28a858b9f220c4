"""Several models behind one API: choice per request, the model endpoints, bad `model` values.

On the fast tier: the app over the session's Redis, with an in-process worker serving Lite0 and Lite2
and their int8 variants.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import redis

from api.schemas import LabelsSchema, ModelSummarySchema, PredictionResponseSchema
from imgclf_contract import keys
from imgclf_contract.model_record import ModelRecord
from imgclf_contract.preprocess import preprocess
from imgclf_contract.settings import SharedSettings
from ml_worker import artifacts, golden
from ml_worker.backends import load_backend, softmax, top_k
from ml_worker.settings import WorkerSettings
from testsupport.envelope import assert_envelope

LITE0, LITE2 = "efficientnet_lite0", "efficientnet_lite2"
LITE0_INT8, LITE2_INT8 = f"{LITE0}_int8", f"{LITE2}_int8"
DEFAULT_MODEL = SharedSettings.default_model
ROCKET = next(p for p in golden.PHOTOS if p.file == "rocket.jpg")


def predict(client, photo: golden.Golden, **form):
    return client.post("/api/v1/predictions", data={"image": (io.BytesIO(photo.path.read_bytes()), photo.file), **form})


@pytest.mark.parametrize("model", [LITE0, LITE2, f"{LITE2}:1", LITE0_INT8, LITE2_INT8])
def test_the_named_model_answers_and_says_so(client, worker, model):
    response = predict(client, ROCKET, model=model, top_k=10)
    assert response.status_code == 200, response.text
    body = response.json
    assert PredictionResponseSchema().validate(body) == {}
    assert (body["model"]["name"], body["model"]["version"]) == (model.partition(":")[0], "1")
    ranked = [(p["label"], p["score"]) for p in body["predictions"]]
    assert ROCKET.failure(ranked) is None


@pytest.mark.parametrize("name", [LITE2, LITE0_INT8])
def test_answers_equal_the_in_process_model(client, worker, name):
    """The service's scores are the in-process LiteRT model's, to float precision (int8 too: its
    dequantised logits are exactly what the .tflite gives)."""
    model = artifacts.load(WorkerSettings.from_env().artifacts_dir, name)
    backend = load_backend("litert", model, 2)
    for photo in golden.PHOTOS:
        tensor = preprocess(photo.path.read_bytes(), 10**8, size=model.input_size).tensor
        expected = top_k(softmax(backend.run(tensor[None]).logits)[0], 5)
        body = predict(client, photo, model=name).json
        served = [(p["class_index"], p["score"]) for p in body["predictions"]]
        assert [i for i, _ in served] == [i for i, _ in expected]
        np.testing.assert_allclose([s for _, s in served], [s for _, s in expected], atol=2e-6)


def test_without_a_model_the_default_answers(client, worker):
    body = predict(client, ROCKET).json
    assert body["model"]["name"] == DEFAULT_MODEL == LITE0_INT8 and body["predictions"][0]["label"] == "missile"


def test_the_cache_keeps_models_apart(client, worker):
    """The same upload asked of two models: each answers for itself; a repeat hits that model's entry."""
    photo = golden.PHOTOS[1]  # chelsea: Lite0 says tiger cat, Lite2 Egyptian cat
    first = {m: predict(client, photo, model=m).json for m in (LITE0, LITE2)}
    again = predict(client, photo, model=LITE2).json
    assert first[LITE0]["predictions"][0]["label"] == "tiger cat"
    assert first[LITE2]["predictions"][0]["label"] == "Egyptian cat"
    assert again["cached"] and again["model"]["name"] == LITE2 and again["predictions"] == first[LITE2]["predictions"]


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [
        ("", 400, "invalid_request"),
        ("x" * 1024, 400, "invalid_request"),
        ("../x", 400, "invalid_request"),
        ("efficientnet_lite2:v1", 400, "invalid_request"),
        (f"{LITE2}:999", 404, "not_found"),
        ("resnet50", 404, "not_found"),
    ],
    ids=["empty", "1KB", "path", "bad-version", "unknown-version", "unknown-name"],
)
def test_bad_model_values_get_an_envelope_never_a_500(client, worker, value, status, code):
    body = assert_envelope(predict(client, ROCKET, model=value), status, code)
    if value == "resnet50":
        assert {LITE0, LITE2} <= set(body["error"]["details"]["known"])
        assert LITE2 in body["error"]["message"]
    if status == 404 and ":" in value:
        assert body["error"]["details"]["versions"] == ["1"]


@pytest.fixture
def published_but_unserved(redis_db: redis.Redis):
    """A model a worker once published (record and index entry) that no live worker serves now."""
    record = ModelRecord("efficientnet_lite1", "1", 240, "resize 274, crop 240", 1000, [], 1280, 0.764)
    redis_db.set(keys.model(record.name, record.version), record.to_json())
    redis_db.sadd(keys.MODELS_SET, "efficientnet_lite1:1")
    return record.name


def wait_listed(client, name: str, timeout_s: float = 5.0) -> dict:
    """The model's summary once the API's view of the models (renewed every 0.5 s) includes it."""
    deadline = time.monotonic() + timeout_s
    while (response := client.get(f"/api/v1/models/{name}")).status_code == 404:
        assert time.monotonic() < deadline, response.json
        time.sleep(0.05)
    return response.json


def test_a_known_model_without_a_live_worker_is_503(client, worker, published_but_unserved):
    listed = wait_listed(client, published_but_unserved)
    assert (listed["available"], listed["workers"], listed["input_size"]) == (False, [], 240)
    body = assert_envelope(predict(client, ROCKET, model=published_but_unserved), 503, "service_unavailable")
    assert body["error"]["details"] == {"missing": "workers", "model": published_but_unserved}


def test_a_head_on_an_int8_base_has_no_export_and_says_why(client, worker, redis_db):
    """The fused download is built from the base's Keras model, which an int8 variant does not have."""
    record = ModelRecord(
        "flowers_q",
        "1",
        224,
        "resize 256, crop 224",
        2,
        [{"index": 0, "wnid": None, "name": "a"}, {"index": 1, "wnid": None, "name": "b"}],
        1280,
        precision="int8",
        base=LITE0_INT8,
        base_version="1",
    )
    redis_db.set(keys.model(record.name, record.version), record.to_json())
    redis_db.sadd(keys.MODELS_SET, f"{record.name}:1")
    assert wait_listed(client, record.name)["precision"] == "int8"
    body = assert_envelope(client.get(f"/api/v1/models/{record.name}/export"), 404, "not_found")
    assert body["error"]["details"] == {"model": "flowers_q", "version": "1", "base": LITE0_INT8}
    assert f"Train on {LITE0}" in body["error"]["message"]


def test_model_endpoints(client, worker):
    for name, size in ((LITE0, 224), (LITE2, 260), (LITE0_INT8, 224), (LITE2_INT8, 260)):
        summary = client.get(f"/api/v1/models/{name}").json
        assert ModelSummarySchema().validate(summary) == {}
        assert (summary["name"], summary["input_size"], summary["versions"], summary["num_labels"]) == (
            name,
            size,
            ["1"],
            1000,
        )
        assert summary["default"] == (name == DEFAULT_MODEL) and summary["available"] and summary["workers"]
        assert summary["published_top1"] == {LITE0: 0.751, LITE2: 0.776}.get(name)  # int8: none published
        assert summary["precision"] == ("int8" if name.endswith("_int8") else "float32")
        labels = client.get(f"/api/v1/models/{name}/labels").json
        assert LabelsSchema().validate(labels) == {}
        assert labels["model"] == name and labels["labels"][967]["name"] == "espresso"
    body = assert_envelope(client.get("/api/v1/models/nope"), 404, "not_found")
    assert {LITE0, LITE2} <= set(body["error"]["details"]["known"])
    assert_envelope(client.get("/api/v1/models/nope/labels"), 404, "not_found")
    assert client.get("/api/v1/labels").json["model"] == DEFAULT_MODEL


def test_openapi_documents_the_model_routes_and_field(client):
    spec = client.get("/api/v1/openapi.json").json
    assert {"/api/v1/models/{name}", "/api/v1/models/{name}/labels"} <= set(spec["paths"])
    assert "ModelSummary" in spec["components"]["schemas"]
    precision = spec["components"]["schemas"]["ModelSummary"]["properties"]["precision"]
    assert precision["enum"] == ["float32", "int8"] and "quantised" in precision["description"]
    form = spec["paths"]["/api/v1/predictions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "model" in form["schema"]["properties"]
    assert "404" in spec["paths"]["/api/v1/predictions"]["post"]["responses"]

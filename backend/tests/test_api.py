"""Every endpoint of the API on the fast tier: the Flask app over a real Redis, with the real
worker code and model on a thread (no gunicorn, no nginx; those are in test_stack_http.py)."""

from __future__ import annotations

import concurrent.futures
import io
import json
from pathlib import Path

import pytest

from api.schemas import (
    CompatPredictionSchema,
    FeedbackRecordSchema,
    LabelsSchema,
    ModelInfoSchema,
    PredictionResponseSchema,
    ReadySchema,
)
from imgclf_contract import keys
from imgclf_contract.jobs import RESULT_TOP_K
from imgclf_contract.model_record import IMAGENET_CLASSES
from imgclf_contract.settings import SharedSettings
from ml_worker import golden
from ml_worker.build import DEFAULT_MODELS
from scripts.ports import unused_port
from testsupport.envelope import assert_envelope

DEFAULT_MODEL = SharedSettings.default_model  # what answers a request that names no model


def post_image(client, path: Path, field: str = "image", route: str = "/api/v1/predictions", **form: str):
    return client.post(route, data={field: (io.BytesIO(path.read_bytes()), path.name), **form})


def predict(client, path: Path, **form: str) -> dict:
    response = post_image(client, path, **form)
    assert response.status_code == 200, response.json
    return response.json


@pytest.mark.parametrize("photo", golden.PHOTOS, ids=lambda p: p.file)
def test_prediction_names_the_golden_photos(client, worker, photo):
    body = predict(client, photo.path)
    assert PredictionResponseSchema().validate(body) == {}
    predictions = body["predictions"]
    assert len(predictions) == 5
    assert predictions[0]["label"] in photo.accepted and predictions[0]["score"] >= photo.min_score
    assert [p["score"] for p in predictions] == sorted((p["score"] for p in predictions), reverse=True)
    assert body["model"] == {"name": DEFAULT_MODEL, "version": "1", "backend": "litert"}
    assert body["batch"]["worker_id"] == worker.worker_id and body["batch"]["deliveries"] == 1
    assert body["image"]["width"] > 0 and len(body["image"]["sha256"]) == 64
    timings = body["timings_ms"]
    assert timings["total"] >= timings["preprocess"] and timings["inference"] >= 0


def test_top_k_selects_how_many(client, worker, golden_dir):
    assert len(predict(client, golden_dir / "rocket.jpg", top_k="1")["predictions"]) == 1
    assert len(predict(client, golden_dir / "rocket.jpg", top_k="10")["predictions"]) == 10


def test_second_identical_upload_is_cached_with_its_own_id(client, worker, golden_dir):
    first = predict(client, golden_dir / "chelsea.png")
    second = predict(client, golden_dir / "chelsea.png")
    assert first["cached"] is False and second["cached"] is True and second["batch"] is None
    assert second["id"] != first["id"]
    assert second["predictions"] == first["predictions"]
    assert second["model"] == {**first["model"], "backend": None}
    assert 'imgclf_cache_lookups_total{result="hit"}' in client.get("/metrics").text


def test_without_cache_every_upload_reaches_a_worker(make_app, worker, golden_dir):
    client = make_app(cache_ttl_s=0).test_client()
    first, second = (predict(client, golden_dir / "coffee.png") for _ in range(2))
    assert first["batch"] and second["batch"] and first["batch"]["id"] != second["batch"]["id"]
    assert second["cached"] is False


def test_feedback_is_stored_and_readable(client, worker, golden_dir):
    prediction = predict(client, golden_dir / "coffee.png")
    sent = {"prediction_id": prediction["id"], "correct": False, "expected_class_index": 968, "comment": "a cup"}
    created = client.post("/api/v1/feedback", json=sent)
    assert created.status_code == 201, created.json
    record = created.json
    assert FeedbackRecordSchema().validate(record) == {}
    assert record["expected_label"] == "cup" and record["correct"] is False
    assert record["prediction"]["sha256"] == prediction["image"]["sha256"]
    assert record["prediction"]["model_version"] == "1"
    assert record["prediction"]["predictions"] == prediction["predictions"]
    assert record["image_key"] is None  # KEEP_FEEDBACK_IMAGES is off
    fetched = client.get(f"/api/v1/feedback/{record['id']}")
    assert fetched.status_code == 200 and fetched.json == record


def test_feedback_errors(client, worker, golden_dir):
    prediction_id = predict(client, golden_dir / "coffee.png")["id"]
    assert_envelope(client.post("/api/v1/feedback", json={"prediction_id": "nope", "correct": True}), 404, "not_found")
    bad_class = {"prediction_id": prediction_id, "correct": False, "expected_class_index": 1000}
    assert_envelope(client.post("/api/v1/feedback", json=bad_class), 422, "validation_failed")
    negative = {**bad_class, "expected_class_index": -1}
    assert_envelope(client.post("/api/v1/feedback", json=negative), 422, "validation_failed")
    missing = {"prediction_id": prediction_id}
    body = assert_envelope(client.post("/api/v1/feedback", json=missing), 400, "invalid_request")
    assert "correct" in body["error"]["message"]
    assert_envelope(client.post("/api/v1/feedback", data="x"), 400, "invalid_request")
    assert_envelope(client.get("/api/v1/feedback/unknown"), 404, "not_found")


def test_models_and_labels(client, worker):
    models = client.get("/api/v1/models").json
    assert ModelInfoSchema().validate(models) == {}
    assert models["num_classes"] == 1000 and models["input_size"] == 224 and models["workers"] == 1
    assert models["default"] == models["name"] == DEFAULT_MODEL
    by_name = {m["name"]: m for m in models["models"]}
    assert sorted(by_name) == sorted(DEFAULT_MODELS)  # what the fast tier's worker serves
    assert {m["precision"] for n, m in by_name.items() if n.endswith("_int8")} == {"int8"}
    assert {m["precision"] for n, m in by_name.items() if not n.endswith("_int8")} == {"float32"}
    assert (by_name["efficientnet_lite2"]["input_size"], by_name["efficientnet_lite2"]["default"]) == (260, False)
    assert all(m["available"] and m["num_labels"] == 1000 and m["workers"] for m in by_name.values())
    assert models["limits"]["max_upload_bytes"] == 10 * 1024 * 1024 and models["limits"]["max_pixels"] == 40_000_000
    labels = client.get("/api/v1/labels")
    assert labels.headers["Cache-Control"] == "public, max-age=3600"
    assert LabelsSchema().validate(labels.json) == {}
    assert len(labels.json["labels"]) == 1000 and len({lb["name"] for lb in labels.json["labels"]}) == 1000
    assert labels.json["labels"][967] == {
        "index": 967,
        "wnid": "n07920052",
        "name": "espresso",
        "synonyms": ["espresso"],
    }
    assert labels.json["labels"][840]["synonyms"] == ["swab", "swob", "mop"]  # the page searches them


def test_without_a_worker_models_and_ready_say_what_is_missing(client):
    body = assert_envelope(client.get("/api/v1/models"), 503, "service_unavailable")
    assert body["error"]["details"] == {"missing": "workers", "model": DEFAULT_MODEL}
    ready = assert_envelope(client.get("/api/v1/ready"), 503, "service_unavailable")
    assert ready["error"]["details"]["missing"] == ["workers"] and ready["error"]["details"]["redis"] is True


def test_health_ready_openapi_docs(client, worker):
    assert client.get("/api/v1/health").json == {"status": "ok"}
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 200 and ReadySchema().validate(ready.json) == {}
    assert ready.json == {"status": "ready", "redis": True, "workers": 1, "missing": []}
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/predictions", "/api/v1/feedback", "/predict", "/api/v1/ready"} <= set(spec["paths"])
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    for asset in ("/api/v1/docs/swagger-ui-bundle.js", "/api/v1/docs/swagger-ui.css", "/api/v1/docs/init.js"):
        assert client.get(asset).status_code == 200
    assert_envelope(client.get("/api/v1/docs/../../etc/passwd"), 404, "not_found")


def test_metrics_include_api_and_worker_figures(client, worker, golden_dir):
    predict(client, golden_dir / "rocket.jpg", top_k="3")
    worker.heartbeat.beat()  # publish the figures of the batch just run now rather than at the next beat
    text = client.get("/metrics").text
    for name in (
        'imgclf_http_requests_total{method="POST",route="/api/v1/predictions",status="200"}',
        "imgclf_http_request_duration_seconds_bucket",
        "imgclf_preprocess_seconds_count",
        "imgclf_queue_depth",
        "imgclf_workers_live 1.0",
        f'imgclf_worker_jobs_total{{worker="{worker.worker_id}"}} 1.0',
        "imgclf_worker_batch_size_bucket",
        "imgclf_worker_inference_seconds_sum",
        "imgclf_redis_up 1.0",
    ):
        assert name in text, name


def test_compatibility_routes(client, worker, golden_dir):
    ok = post_image(client, golden_dir / "coffee.png", field="file", route="/predict")
    assert ok.status_code == 200 and ok.json == {"success": True, "prediction": "espresso", "score": ok.json["score"]}
    assert CompatPredictionSchema().validate(ok.json) == {} and 0.9 <= ok.json["score"] <= 1
    assert round(ok.json["score"], 4) == ok.json["score"]
    failure = {"success": False, "prediction": None, "score": None}
    wrong_field = post_image(client, golden_dir / "coffee.png", field="image", route="/predict")
    assert wrong_field.status_code == 400 and wrong_field.json == failure
    not_image = client.post("/predict", data={"file": (io.BytesIO(b"not an image"), "x.jpg")})
    assert not_image.status_code == 415 and not_image.json == failure
    report = client.post("/feedback", data={"report": "wrong label on my cat"})
    assert report.status_code == 200 and report.json["success"] is True
    stored = client.get(f"/api/v1/feedback/{report.json['id']}").json
    assert stored["comment"] == "wrong label on my cat" and stored["prediction_id"] is None
    blank = client.post("/feedback", data={"report": "  "})
    assert blank.status_code == 400 and blank.json == {"success": False, "id": None}


def test_compatibility_route_keeps_its_body_when_no_worker_lives(client, golden_dir):
    response = post_image(client, golden_dir / "coffee.png", field="file", route="/predict")
    assert response.status_code == 503 and response.json == {"success": False, "prediction": None, "score": None}
    assert int(response.headers["Retry-After"]) > 0


def test_unknown_routes_and_methods_answer_json(client):
    assert_envelope(client.get("/api/v1/nope"), 404, "not_found")
    body = assert_envelope(client.get("/api/v1/predictions"), 405, "method_not_allowed")
    assert "POST" in body["error"]["message"] and "POST" in client.get("/api/v1/predictions").headers["Allow"]


def test_request_id_is_kept_or_replaced(client, worker, golden_dir):
    traced = client.post(
        "/api/v1/predictions",
        data={"image": (io.BytesIO((golden_dir / "rocket.jpg").read_bytes()), "rocket.jpg")},
        headers={"X-Request-ID": "trace-me-123"},
    )
    assert traced.status_code == 200 and traced.headers["X-Request-ID"] == "trace-me-123"
    replaced = client.get("/api/v1/health", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"]
    assert replaced not in ("", "bad id!")


def test_export_feedback_writes_jsonl(client, worker, golden_dir, redis_server, tmp_path, monkeypatch):
    from api import export_feedback

    prediction = predict(client, golden_dir / "coffee.png")
    created = client.post("/api/v1/feedback", json={"prediction_id": prediction["id"], "correct": True}).json
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    out = tmp_path / "feedback.jsonl"
    assert export_feedback.main(["--out", str(out)]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == [created]


def test_concurrent_requests_share_a_batch(make_app, start_worker):
    """With a batching window, simultaneous uploads are answered by one inference."""
    app = make_app(cache_ttl_s=0)
    start_worker(batch_wait_ms=250)
    paths = [p.path for p in golden.PHOTOS] * 2
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        bodies = list(pool.map(lambda p: predict(app.test_client(), p), paths))
    batches: dict[str, list[dict]] = {}
    for body in bodies:
        batches.setdefault(body["batch"]["id"], []).append(body)
    shared = max(batches.values(), key=len)
    assert len(shared) >= 2
    assert all(b["batch"]["size"] == len(shared) for b in shared)
    for path, body in zip(paths, bodies, strict=True):
        photo = next(p for p in golden.PHOTOS if p.path == path)
        assert body["predictions"][0]["label"] in photo.accepted


def test_timeout_queue_full_and_no_worker(make_app, start_worker, golden_dir):
    """504 at the deadline, 429 with Retry-After when the queue is full, 503 when no worker lives."""
    app = make_app(request_timeout_s=1.5, max_queue=2, cache_ttl_s=0)
    slow = start_worker(delay_s=2.5, max_batch=1, claim_idle_ms=1000)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: post_image(app.test_client(), golden_dir / "rocket.jpg"), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert 504 in statuses and 429 in statuses, statuses
    for r in responses:
        assert_envelope(r, r.status_code, {504: "timeout", 429: "queue_full"}[r.status_code])
    slow.stop()
    client = app.test_client()
    body = assert_envelope(post_image(client, golden_dir / "rocket.jpg"), 503, "service_unavailable")
    assert "worker" in body["error"]["message"]
    ready = assert_envelope(client.get("/api/v1/ready"), 503, "service_unavailable")
    assert "workers" in ready["error"]["message"]


def test_kept_feedback_images_are_stored_by_hash_and_persisted(make_app, worker, redis_db, golden_dir):
    """With KEEP_FEEDBACK_IMAGES the upload is kept (keyed by sha256, never by file name) once feedback names it."""
    client = make_app(keep_feedback_images=True).test_client()
    data = (golden_dir / "rocket.jpg").read_bytes()
    prediction = client.post("/api/v1/predictions", data={"image": (io.BytesIO(data), "../../x.jpg")}).json
    image_key = keys.image(prediction["image"]["sha256"])
    assert redis_db.ttl(image_key) > 0  # held only as long as the prediction
    record = client.post("/api/v1/feedback", json={"prediction_id": prediction["id"], "correct": True}).json
    assert record["image_key"] == image_key
    assert redis_db.get(image_key) == data
    assert redis_db.ttl(image_key) == -1  # kept for the training set


def test_redis_outage_is_a_503_naming_redis(make_app, golden_dir):
    client = make_app(redis_url=f"redis://127.0.0.1:{unused_port()}/0").test_client()
    body = assert_envelope(post_image(client, golden_dir / "coffee.png"), 503, "service_unavailable")
    assert body["error"]["details"] == {"missing": "redis"}
    ready = assert_envelope(client.get("/api/v1/ready"), 503, "service_unavailable")
    assert ready["error"]["details"]["missing"] == ["redis"]
    assert client.get("/api/v1/health").status_code == 200


def test_openapi_request_bodies_come_from_the_schemas(client):
    spec = client.get("/api/v1/openapi.json").json
    upload = spec["paths"]["/api/v1/predictions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["image"] and upload["properties"]["image"]["format"] == "binary"
    assert upload["properties"]["top_k"] == {"type": "integer", "default": 5, "minimum": 1, "maximum": RESULT_TOP_K}
    expected = spec["components"]["schemas"]["FeedbackRequest"]["properties"]["expected_class_index"]
    assert (expected["minimum"], expected["maximum"]) == (0, IMAGENET_CLASSES - 1)

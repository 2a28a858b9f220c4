"""Every endpoint of the API through nginx, against the real stack (Redis, worker, model)."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import pytest
import requests

from api.schemas import (
    CompatPredictionSchema,
    ErrorEnvelopeSchema,
    FeedbackRecordSchema,
    LabelsSchema,
    ModelInfoSchema,
    PredictionResponseSchema,
    ReadySchema,
)
from ml_worker import golden

pytestmark = pytest.mark.integration
TIMEOUT = 30


def post_image(url: str, path: Path, field: str = "image", route: str = "/api/v1/predictions", **data):
    with open(path, "rb") as f:
        return requests.post(url + route, files={field: (path.name, f)}, data=data, timeout=TIMEOUT)


def assert_envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert ErrorEnvelopeSchema().validate(body) == {}
    assert body["error"]["code"] == code and body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


@pytest.fixture(scope="module")
def url(live_stack) -> str:
    return live_stack.config.url


@pytest.mark.parametrize("photo", golden.PHOTOS, ids=lambda p: p.file)
def test_prediction_names_the_golden_photos(url, photo):
    response = post_image(url, photo.path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert PredictionResponseSchema().validate(body) == {}
    predictions = body["predictions"]
    assert len(predictions) == 5
    assert predictions[0]["label"] in photo.accepted and predictions[0]["score"] >= photo.min_score
    assert [p["score"] for p in predictions] == sorted((p["score"] for p in predictions), reverse=True)
    assert body["model"] == {"name": "efficientnet_lite0", "version": "1", "backend": "litert"}
    assert body["image"]["width"] > 0 and len(body["image"]["sha256"]) == 64
    timings = body["timings_ms"]
    assert timings["total"] >= timings["preprocess"] and timings["inference"] >= 0


def test_top_k_selects_how_many(url, golden_dir):
    assert len(post_image(url, golden_dir / "rocket.jpg", top_k="1").json()["predictions"]) == 1
    assert len(post_image(url, golden_dir / "rocket.jpg", top_k="10").json()["predictions"]) == 10


def test_second_identical_upload_is_cached_with_its_own_id(url, golden_dir):
    first = post_image(url, golden_dir / "chelsea.png").json()
    second = post_image(url, golden_dir / "chelsea.png").json()
    assert second["cached"] is True and second["batch"] is None
    assert second["id"] != first["id"]
    assert second["predictions"] == first["predictions"]
    assert second["model"]["version"] == first["model"]["version"]
    metrics = requests.get(url + "/metrics", timeout=TIMEOUT).text
    assert 'imgclf_cache_lookups_total{result="hit"}' in metrics


def test_feedback_is_stored_and_readable(url, golden_dir):
    prediction = post_image(url, golden_dir / "coffee.png").json()
    sent = {"prediction_id": prediction["id"], "correct": False, "expected_class_index": 968, "comment": "a cup"}
    created = requests.post(url + "/api/v1/feedback", json=sent, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    record = created.json()
    assert FeedbackRecordSchema().validate(record) == {}
    assert record["expected_label"] == "cup" and record["correct"] is False
    assert record["prediction"]["sha256"] == prediction["image"]["sha256"]
    assert record["prediction"]["model_version"] == "1"
    assert record["prediction"]["predictions"] == prediction["predictions"]
    assert record["image_key"] is None  # KEEP_FEEDBACK_IMAGES is off
    fetched = requests.get(f"{url}/api/v1/feedback/{record['id']}", timeout=TIMEOUT)
    assert fetched.status_code == 200 and fetched.json() == record


def test_feedback_errors(url, golden_dir):
    prediction_id = post_image(url, golden_dir / "coffee.png").json()["id"]
    unknown = {"prediction_id": "nope", "correct": True}
    assert_envelope(requests.post(url + "/api/v1/feedback", json=unknown, timeout=TIMEOUT), 404, "not_found")
    bad_class = {"prediction_id": prediction_id, "correct": False, "expected_class_index": 1000}
    assert_envelope(requests.post(url + "/api/v1/feedback", json=bad_class, timeout=TIMEOUT), 422, "validation_failed")
    negative = {**bad_class, "expected_class_index": -1}
    assert_envelope(requests.post(url + "/api/v1/feedback", json=negative, timeout=TIMEOUT), 422, "validation_failed")
    missing = {"prediction_id": prediction_id}
    body = assert_envelope(
        requests.post(url + "/api/v1/feedback", json=missing, timeout=TIMEOUT), 400, "invalid_request"
    )
    assert "correct" in body["error"]["message"]
    not_json = requests.post(url + "/api/v1/feedback", data="x", timeout=TIMEOUT)
    assert_envelope(not_json, 400, "invalid_request")
    assert_envelope(requests.get(url + "/api/v1/feedback/unknown", timeout=TIMEOUT), 404, "not_found")


def test_models_and_labels(url):
    models = requests.get(url + "/api/v1/models", timeout=TIMEOUT).json()
    assert ModelInfoSchema().validate(models) == {}
    assert models["num_classes"] == 1000 and models["input_size"] == 224 and models["workers"] == 1
    assert models["default"] == "efficientnet_lite0"
    by_name = {m["name"]: m for m in models["models"]}
    assert sorted(by_name) == ["efficientnet_lite0", "efficientnet_lite2"]
    assert (by_name["efficientnet_lite2"]["input_size"], by_name["efficientnet_lite2"]["default"]) == (260, False)
    assert all(m["available"] and m["num_labels"] == 1000 and m["workers"] for m in by_name.values())
    assert models["limits"]["max_upload_bytes"] == 10 * 1024 * 1024 and models["limits"]["max_pixels"] == 40_000_000
    labels = requests.get(url + "/api/v1/labels", timeout=TIMEOUT).json()
    assert LabelsSchema().validate(labels) == {}
    assert len(labels["labels"]) == 1000 and len({lb["name"] for lb in labels["labels"]}) == 1000
    assert labels["labels"][967] == {"index": 967, "wnid": "n07920052", "name": "espresso", "synonyms": ["espresso"]}
    assert labels["labels"][840]["synonyms"] == ["swab", "swob", "mop"]  # the page searches them


def test_health_ready_openapi_docs(url):
    assert requests.get(url + "/api/v1/health", timeout=TIMEOUT).json() == {"status": "ok"}
    ready = requests.get(url + "/api/v1/ready", timeout=TIMEOUT)
    assert ready.status_code == 200 and ReadySchema().validate(ready.json()) == {}
    spec = requests.get(url + "/api/v1/openapi.json", timeout=TIMEOUT).json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/predictions", "/api/v1/feedback", "/predict", "/api/v1/ready"} <= set(spec["paths"])
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    docs = requests.get(url + "/api/v1/docs", timeout=TIMEOUT)
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    for asset in ("/api/v1/docs/swagger-ui-bundle.js", "/api/v1/docs/swagger-ui.css", "/api/v1/docs/init.js"):
        assert requests.get(url + asset, timeout=TIMEOUT).status_code == 200
    assert "unsafe-inline" in docs.headers["Content-Security-Policy"]


def test_metrics_include_api_and_worker_figures(url, golden_dir):
    post_image(url, golden_dir / "rocket.jpg", top_k="3")
    text = requests.get(url + "/metrics", timeout=TIMEOUT).text
    for name in (
        'imgclf_http_requests_total{method="POST",route="/api/v1/predictions",status="200"}',
        "imgclf_http_request_duration_seconds_bucket",
        "imgclf_preprocess_seconds_count",
        "imgclf_queue_depth",
        "imgclf_workers_live 1.0",
        "imgclf_worker_jobs_total",
        "imgclf_worker_batch_size_bucket",
        "imgclf_worker_inference_seconds_sum",
        "imgclf_redis_up 1.0",
    ):
        assert name in text, name


def test_compatibility_routes(url, golden_dir):
    ok = post_image(url, golden_dir / "coffee.png", field="file", route="/predict")
    assert ok.status_code == 200 and ok.json() == {
        "success": True,
        "prediction": "espresso",
        "score": ok.json()["score"],
    }
    assert CompatPredictionSchema().validate(ok.json()) == {} and 0.9 <= ok.json()["score"] <= 1
    assert round(ok.json()["score"], 4) == ok.json()["score"]
    failure = {"success": False, "prediction": None, "score": None}
    wrong_field = post_image(url, golden_dir / "coffee.png", field="image", route="/predict")
    assert wrong_field.status_code == 400 and wrong_field.json() == failure
    not_image = requests.post(url + "/predict", files={"file": ("x.jpg", b"not an image")}, timeout=TIMEOUT)
    assert not_image.status_code == 415 and not_image.json() == failure
    report = requests.post(url + "/feedback", data={"report": "wrong label on my cat"}, timeout=TIMEOUT)
    assert report.status_code == 200 and report.json()["success"] is True
    stored = requests.get(f"{url}/api/v1/feedback/{report.json()['id']}", timeout=TIMEOUT).json()
    assert stored["comment"] == "wrong label on my cat" and stored["prediction_id"] is None
    assert requests.post(url + "/feedback", data={}, timeout=TIMEOUT).status_code == 400


def test_unknown_routes_and_methods_answer_json(url):
    assert_envelope(requests.get(url + "/api/v1/nope", timeout=TIMEOUT), 404, "not_found")
    body = assert_envelope(requests.get(url + "/api/v1/predictions", timeout=TIMEOUT), 405, "method_not_allowed")
    assert "POST" in body["error"]["message"]


def test_request_id_is_kept_end_to_end(url, golden_dir, live_stack):
    with open(golden_dir / "rocket.jpg", "rb") as f:
        response = requests.post(url + "/api/v1/predictions", files={"image": f},
                                 headers={"X-Request-ID": "trace-me-123"}, timeout=TIMEOUT)  # fmt: skip
    assert response.headers["X-Request-ID"] == "trace-me-123"
    assert requests.get(url + "/api/v1/health", headers={"X-Request-ID": "bad id!"}, timeout=TIMEOUT).headers[
        "X-Request-ID"
    ] not in ("", "bad id!")


def test_export_feedback_writes_jsonl(live_stack, url, golden_dir, tmp_path, monkeypatch):
    from api import export_feedback

    prediction = post_image(url, golden_dir / "coffee.png").json()
    created = requests.post(url + "/api/v1/feedback", json={"prediction_id": prediction["id"], "correct": True},
                            timeout=TIMEOUT).json()  # fmt: skip
    monkeypatch.setenv("REDIS_URL", live_stack.config.redis_url)
    out = tmp_path / "feedback.jsonl"
    assert export_feedback.main(["--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert created in lines


def test_concurrent_requests_share_a_batch(stack_factory, golden_dir):
    """With a batching window, simultaneous uploads are answered by one inference."""
    stack = stack_factory("batching", env={"BATCH_WAIT_MS": "250", "CACHE_TTL_S": "0"})
    paths = [p.path for p in golden.PHOTOS] * 2
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        bodies = list(pool.map(lambda p: post_image(stack.config.url, p).json(), paths))
    batches: dict[str, list[dict]] = {}
    for body in bodies:
        batches.setdefault(body["batch"]["id"], []).append(body)
    shared = max(batches.values(), key=len)
    assert len(shared) >= 2
    assert all(b["batch"]["size"] == len(shared) for b in shared)
    for path, body in zip(paths, bodies, strict=True):
        photo = next(p for p in golden.PHOTOS if p.path == path)
        assert body["predictions"][0]["label"] in photo.accepted


def test_timeout_queue_full_and_no_worker(stack_factory, golden_dir):
    """504 at the deadline, 429 with Retry-After when the queue is full, 503 when no worker lives."""
    stack = stack_factory(
        "slow-worker",
        env={"FAULT_INFERENCE_DELAY_MS": "2500", "REQUEST_TIMEOUT_S": "1.5", "CLAIM_IDLE_MS": "1000",
             "MAX_QUEUE": "2", "MAX_BATCH": "1", "CACHE_TTL_S": "0", "HEARTBEAT_STALE_S": "2",
             "HEARTBEAT_INTERVAL_S": "0.5"},
    )  # fmt: skip
    url = stack.config.url
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: post_image(url, golden_dir / "rocket.jpg"), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert 504 in statuses and 429 in statuses, statuses
    for r in responses:
        code = {504: "timeout", 429: "queue_full"}[r.status_code]
        assert_envelope(r, r.status_code, code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
    stack.stop("worker-1")
    no_worker = post_image(url, golden_dir / "rocket.jpg")
    body = assert_envelope(no_worker, 503, "service_unavailable")
    assert "worker" in body["error"]["message"] and no_worker.headers["Retry-After"]
    ready = requests.get(url + "/api/v1/ready", timeout=TIMEOUT)
    assert ready.status_code == 503 and "workers" in ready.json()["error"]["message"]


def test_kept_feedback_images_are_stored_by_hash_and_persisted(stack_factory, golden_dir):
    """With KEEP_FEEDBACK_IMAGES the upload is kept (keyed by sha256, never by file name) once feedback names it."""
    import redis

    stack = stack_factory("keep-images", env={"KEEP_FEEDBACK_IMAGES": "true"})
    url = stack.config.url
    data = (golden_dir / "rocket.jpg").read_bytes()
    prediction = requests.post(url + "/api/v1/predictions", files={"image": ("../../x.jpg", data)}, timeout=TIMEOUT)
    sha256 = prediction.json()["image"]["sha256"]
    client = redis.Redis.from_url(stack.config.redis_url)
    assert client.ttl(f"imgclf:image:{sha256}") > 0  # held only as long as the prediction
    sent = {"prediction_id": prediction.json()["id"], "correct": True}
    record = requests.post(url + "/api/v1/feedback", json=sent, timeout=TIMEOUT).json()
    assert record["image_key"] == f"imgclf:image:{sha256}"
    assert client.get(record["image_key"]) == data
    assert client.ttl(record["image_key"]) == -1  # kept for the training set


def _health_count(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=TIMEOUT).text
    prefix = 'imgclf_http_requests_total{method="GET",route="/api/v1/health",status="200"}'
    return sum(float(li.rsplit(" ", 1)[1]) for li in text.splitlines() if li.startswith(prefix))


def test_metrics_add_up_across_api_processes(stack_factory):
    """prometheus-client multiprocess mode: every gunicorn process's requests are counted, once."""
    stack = stack_factory("metrics-2proc", env={"API_PROCESSES": "2", "API_THREADS": "4"})
    url = stack.config.url
    before = _health_count(url)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = list(
            pool.map(lambda _: requests.get(url + "/api/v1/health", timeout=TIMEOUT).status_code, range(30))
        )
    assert statuses == [200] * 30
    assert _health_count(url) - before == 30  # one process alone would have seen about half

"""Your own categories, end to end on a real stack with a trainer: dataset -> training -> served -> exported.

Images are drawn with Pillow (``loadtest/shapes.py``): 3 labels x 24 images to train on, fresh ones
to predict. Asserts hold-out accuracy, the served custom model's accuracy, served vs exported agreement
(1e-4), a retrain giving a new (identical: fixed seed) version, rollback, a killed trainer, and bad input.
"""

from __future__ import annotations

import concurrent.futures
import io
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import redis
import requests

from api.schemas import DatasetSchema, ModelSummarySchema, PredictionResponseSchema, TrainingSchema
from api.store.models import SNAPSHOT_TTL_S
from imgclf_contract import keys
from imgclf_contract.heads import load_head
from imgclf_contract.preprocess import preprocess
from imgclf_contract.training import STALE_S
from loadtest import shapes
from ml_worker.settings import WorkerSettings
from testsupport.envelope import assert_envelope

pytestmark = pytest.mark.integration
NAME = "shapes_test"
LABELS = ["circle", "stripes", "checks"]
SHOWN = {"circle": "Circle ○", "stripes": "stripes", "checks": "checks"}  # free text labels, not slugs
PER_LABEL = 24
TRAINING_TIMEOUT_S = 180
TIMEOUT = 30
SAMPLE_DIR = WorkerSettings.from_env().imagenet_sample_dir  # IMAGENET_SAMPLE_DIR, default beside the checkout
FLOAT_BASE = "efficientnet_lite0"
# Coarse groups of ImageNet class indices (WordNet's dogs, birds and insects)
GROUPS = {"dog": range(151, 269), "bird": [*range(7, 25), *range(80, 101), *range(127, 147)], "insect": range(300, 327)}


@pytest.fixture(scope="module")
def stack(trainer_stack):
    return trainer_stack


@pytest.fixture(scope="module")
def url(stack) -> str:
    return stack.config.url


@pytest.fixture(scope="module")
def client(stack) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url("store"))  # admin: the test reads what the trainer wrote


def upload(url: str, dataset: str, data: bytes, label: str) -> requests.Response:
    files = {"image": ("x.png", data)}
    return requests.post(f"{url}/api/v1/datasets/{dataset}/images", files=files, data={"label": label}, timeout=TIMEOUT)


def fill(url: str, dataset: str, per_label: int, seed: int, labels: list[str] = LABELS, **create) -> None:
    requests.post(f"{url}/api/v1/datasets", json={"name": dataset, **create}, timeout=TIMEOUT).raise_for_status()
    rng = np.random.default_rng(seed)
    jobs = [(shapes.image(label, rng), SHOWN.get(label, label)) for label in labels for _ in range(per_label)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda job: upload(url, dataset, *job), jobs))
    assert [a.status_code for a in answers] == [201] * len(jobs), answers[0].text


def train(url: str, dataset: str, **body) -> requests.Response:
    return requests.post(f"{url}/api/v1/trainings", json={"dataset": dataset, **body}, timeout=TIMEOUT)


def follow(url: str, training_id: str) -> tuple[dict, list[dict]]:
    """Poll until the training ends; returns the final state and every state seen while it ran."""
    seen, deadline = [], time.monotonic() + TRAINING_TIMEOUT_S
    while time.monotonic() < deadline:
        state = requests.get(f"{url}/api/v1/trainings/{training_id}", timeout=TIMEOUT).json()
        assert TrainingSchema().validate(state) == {}
        if state["status"] in ("succeeded", "failed"):
            return state, seen
        seen.append(state)
        time.sleep(0.05)  # a training of these shapes takes about half a second: see its epochs go by
    raise AssertionError(f"training {training_id} did not finish in {TRAINING_TIMEOUT_S} s: {seen[-1:]}")


def predict(url: str, data: bytes, model: str) -> dict:
    response = requests.post(
        f"{url}/api/v1/predictions",
        files={"image": ("x.png", data)},
        data={"model": model, "top_k": 3},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert PredictionResponseSchema().validate(body) == {}
    return body


@pytest.fixture(scope="module")
def trained(url) -> dict:
    """The dataset filled and trained once; the first training's final state. On float Lite0, not the
    default int8 Lite0: only a head on a float base has a standalone export (test_the_export_...)."""
    fill(url, NAME, PER_LABEL, seed=1, base_model=FLOAT_BASE)
    response = train(url, NAME)
    assert response.status_code == 202, response.text
    again = train(url, NAME)
    assert_envelope(again, 409, "conflict")  # one training per model name at a time
    state, seen = follow(url, response.json()["id"])
    assert state["status"] == "succeeded", state
    assert any(s["status"] == "running" and s.get("epoch", 0) >= 1 for s in seen), "no progress was readable"
    return state


def test_the_dataset_counts_each_label_and_resending_is_idempotent(url, trained):
    body = requests.get(f"{url}/api/v1/datasets/{NAME}", timeout=TIMEOUT).json()
    assert DatasetSchema().validate(body) == {}
    assert body["labels"] == {SHOWN[label]: PER_LABEL for label in LABELS} and body["images"] == 3 * PER_LABEL
    data = shapes.image("circle", np.random.default_rng(1))  # the very first upload again
    again = upload(url, NAME, data, SHOWN["circle"])
    assert again.status_code == 200 and again.json()["created"] is False
    assert requests.get(f"{url}/api/v1/datasets/{NAME}", timeout=TIMEOUT).json()["images"] == 3 * PER_LABEL


def test_training_reports_holdout_accuracy(trained):
    report = trained["report"]
    assert report["top1"] >= 0.9, report
    assert report["holdout_images"] == 3 * round(PER_LABEL * 0.2)
    assert set(report["per_label"]) == set(SHOWN.values())
    assert all(v["recall"] is not None for v in report["per_label"].values())
    assert trained["version"] == "1"


def test_the_custom_model_answers_in_its_own_labels(url, trained):
    rng = np.random.default_rng(99)  # images it never saw
    hits = 0
    for label in LABELS:
        for _ in range(5):
            body = predict(url, shapes.image(label, rng), NAME)
            assert body["model"]["name"] == NAME and body["model"]["version"] == "1"
            top = body["predictions"][0]
            assert top["wnid"] is None and 0 <= top["class_index"] < 3
            hits += top["label"] == SHOWN[label]
    assert hits >= 13, f"{hits}/15 fresh images right"


def test_models_lists_the_custom_model_with_labels_and_metrics(url, trained):
    summary = requests.get(f"{url}/api/v1/models/{NAME}", timeout=TIMEOUT).json()
    assert ModelSummarySchema().validate(summary) == {}
    assert summary["labels"] == sorted(SHOWN.values()) and summary["base"] == f"{FLOAT_BASE}:1"
    assert summary["precision"] == "float32"  # its base's
    assert summary["measured"]["top1"] == trained["report"]["top1"] and summary["available"]
    listed = requests.get(f"{url}/api/v1/models", timeout=TIMEOUT).json()
    assert NAME in [m["name"] for m in listed["models"]]


def test_the_export_reproduces_the_service(url, trained):
    from ml_worker.export import run_fused

    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    while (response := requests.get(f"{url}/api/v1/models/{NAME}/export", timeout=TIMEOUT)).status_code == 503:
        assert time.monotonic() < deadline, "the export was never built"
        time.sleep(1)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(response.content))
    labels = bundle.read("labels.txt").decode().splitlines()
    assert labels == sorted(SHOWN.values())
    tflite = Path(__file__).parent / ".export-test.tflite"
    tflite.write_bytes(bundle.read("model.tflite"))
    try:
        rng = np.random.default_rng(7)
        for label in LABELS:
            data = shapes.image(label, rng)
            served = {p["class_index"]: p["score"] for p in predict(url, data, f"{NAME}:1")["predictions"]}
            exported = run_fused(tflite, preprocess(data, 10**8, size=224).tensor[None])[0]
            for index, score in served.items():
                assert abs(exported[index] - score) <= 1e-4, (label, index, exported[index], score)
    finally:
        tflite.unlink()


def answering_version(url: str, data: bytes, expected: str) -> str:
    """The version answering the bare name once the API's model snapshot (0.5 s) has caught up."""
    deadline = time.monotonic() + SNAPSHOT_TTL_S * 4
    while (version := predict(url, data, NAME)["model"]["version"]) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return version


def test_retrain_gives_a_new_identical_version_and_rollback_works(url, client, trained):
    response = train(url, NAME)
    assert response.status_code == 202, response.text
    state, _ = follow(url, response.json()["id"])
    assert state["status"] == "succeeded" and state["version"] == "2"
    first, second = load_head(client, NAME, "1"), load_head(client, NAME, "2")
    np.testing.assert_allclose(first.weights, second.weights, atol=1e-6)  # fixed seed: the same model
    data = shapes.image("stripes", np.random.default_rng(5))
    assert answering_version(url, data, "2") == "2"  # the newest answers the name
    rolled = requests.post(f"{url}/api/v1/models/{NAME}/rollback", json={"version": "1"}, timeout=TIMEOUT)
    assert rolled.status_code == 200 and rolled.json()["pinned"] == "1"
    assert answering_version(url, data, "1") == "1"
    assert predict(url, data, f"{NAME}:2")["model"]["version"] == "2"
    missing = requests.post(f"{url}/api/v1/models/{NAME}/rollback", json={"version": "9"}, timeout=TIMEOUT)
    assert_envelope(missing, 404, "not_found")


def test_feedback_on_a_custom_prediction_joins_its_dataset(url, trained):
    data = shapes.image("checks", np.random.default_rng(31))
    prediction = predict(url, data, NAME)
    expected = sorted(SHOWN.values()).index(SHOWN["checks"])
    feedback = {"prediction_id": prediction["id"], "correct": False, "expected_class_index": expected, "comment": None}
    created = requests.post(f"{url}/api/v1/feedback", json=feedback, timeout=TIMEOUT)
    assert created.status_code == 201 and created.json()["expected_label"] == SHOWN["checks"]
    before = requests.get(f"{url}/api/v1/datasets/{NAME}", timeout=TIMEOUT).json()["labels"][SHOWN["checks"]]
    imported = requests.post(f"{url}/api/v1/datasets/{NAME}/feedback", json={}, timeout=TIMEOUT).json()
    assert imported["added"] == 1, imported
    after = requests.get(f"{url}/api/v1/datasets/{NAME}", timeout=TIMEOUT).json()["labels"][SHOWN["checks"]]
    assert after == before + 1
    again = requests.post(f"{url}/api/v1/datasets/{NAME}/feedback", json={}, timeout=TIMEOUT).json()
    assert again["added"] == 0 and again["skipped"]["already_there"] == 1


def test_a_killed_trainer_fails_the_job_and_publishes_nothing(url, client, stack, trained):
    fill(url, "killed", 40, seed=3, labels=["square", "dots", "rings", "cross", "frame"])
    response = train(url, "killed")
    assert response.status_code == 202
    training_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while requests.get(f"{url}/api/v1/trainings/{training_id}", timeout=TIMEOUT).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stack.signal("trainer", signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        while (state := requests.get(f"{url}/api/v1/trainings/{training_id}", timeout=TIMEOUT).json())[
            "status"
        ] == "running":
            assert time.monotonic() - killed_at < STALE_S + 3
            time.sleep(0.25)
        assert state["status"] == "failed" and "trainer stopped" in state["error"]
        assert not client.sismember(keys.MODELS_SET, "killed:1") and not client.exists(keys.head("killed", "1"))
    finally:
        stack.start("trainer")
    again = train(url, "killed")  # the lock went with the failed job
    assert again.status_code == 202, again.text


def test_bad_input_gets_the_envelope(url, trained):
    requests.post(f"{url}/api/v1/datasets", json={"name": "tiny"}, timeout=TIMEOUT)
    rng = np.random.default_rng(11)
    assert_envelope(train(url, "tiny"), 422, "validation_failed")  # no labels at all
    for _ in range(5):
        assert upload(url, "tiny", shapes.image("circle", rng), "one").status_code == 201
    assert_envelope(train(url, "tiny"), 422, "validation_failed")  # fewer than 2 labels
    assert upload(url, "tiny", shapes.image("square", rng), "two").status_code == 201
    body = assert_envelope(train(url, "tiny"), 422, "validation_failed")  # a label under 5 images
    assert "'two'" in body["error"]["message"]
    assert_envelope(train(url, "nope"), 404, "not_found")
    assert_envelope(upload(url, "nope", shapes.image("circle", rng), "x"), 404, "not_found")
    assert_envelope(upload(url, "tiny", shapes.image("circle", rng), "x" * 101), 400, "invalid_request")
    assert_envelope(upload(url, "tiny", shapes.image("circle", rng), "a\nb"), 400, "invalid_request")
    assert_envelope(upload(url, "tiny", b"not an image", "one"), 415, "unsupported_media_type")
    assert_envelope(
        requests.post(f"{url}/api/v1/datasets", json={"name": "../x"}, timeout=TIMEOUT), 400, "invalid_request"
    )
    assert_envelope(requests.get(f"{url}/api/v1/datasets/Bad-Name", timeout=TIMEOUT), 400, "invalid_request")
    assert_envelope(requests.get(f"{url}/api/v1/trainings/unknown", timeout=TIMEOUT), 404, "not_found")
    assert_envelope(train(url, "tiny", model="efficientnet_lite0"), 409, "conflict")
    assert_envelope(train(url, "tiny", holdout=0.9), 400, "invalid_request")
    assert_envelope(
        requests.get(f"{url}/api/v1/models/efficientnet_lite0/export", timeout=TIMEOUT), 400, "invalid_request"
    )
    removed = requests.delete(f"{url}/api/v1/datasets/tiny/labels/two", timeout=TIMEOUT)
    assert removed.status_code == 200 and removed.json() == {"removed": 1}
    assert requests.delete(f"{url}/api/v1/datasets/tiny", timeout=TIMEOUT).json() == {"removed": 5}
    assert_envelope(requests.get(f"{url}/api/v1/datasets/tiny", timeout=TIMEOUT), 404, "not_found")


def test_real_photos_grouped_into_coarse_labels(url):
    """ImageNet sample photos (evaluation data, read in place) as dogs, birds and insects."""
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"{SAMPLE_DIR} is absent (set IMAGENET_SAMPLE_DIR)")
    labels = requests.get(f"{url}/api/v1/models/efficientnet_lite0/labels", timeout=TIMEOUT).json()["labels"]
    group_of = {lb["wnid"]: g for lb in labels for g, indices in GROUPS.items() if lb["index"] in indices}
    photos = [
        (p, group_of[p.name.partition("_")[0]])
        for p in sorted(SAMPLE_DIR.iterdir())
        if p.name.partition("_")[0] in group_of
    ]
    requests.post(f"{url}/api/v1/datasets", json={"name": "coarse"}, timeout=TIMEOUT).raise_for_status()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda job: upload(url, "coarse", job[0].read_bytes(), job[1]).status_code, photos))
    assert codes == [201] * len(photos)
    state, _ = follow(url, train(url, "coarse").json()["id"])
    assert state["status"] == "succeeded", state
    report = state["report"]
    assert report["holdout_images"] >= 15 and report["top1"] >= 0.85, report
    print(
        f"coarse ImageNet groups: {len(photos)} photos, hold-out top-1 {report['top1']} on {report['holdout_images']}"
    )

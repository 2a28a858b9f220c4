"""Custom-model routes without a stack: API keys on every route (checked before Redis is touched),
and the dataset limits (MAX_DATASET_IMAGES, 1000 labels)."""

from __future__ import annotations

import pytest

from api import create_app
from api.datasets import check_room
from api.settings import ApiSettings
from imgclf_contract.errors import ServiceError
from imgclf_contract.training import MAX_LABELS

ROUTES = [
    ("POST", "/api/v1/datasets"),
    ("GET", "/api/v1/datasets"),
    ("GET", "/api/v1/datasets/flowers"),
    ("DELETE", "/api/v1/datasets/flowers"),
    ("POST", "/api/v1/datasets/flowers/images"),
    ("GET", "/api/v1/datasets/flowers/images"),
    ("DELETE", "/api/v1/datasets/flowers/images/ab12"),
    ("DELETE", "/api/v1/datasets/flowers/labels/tulip"),
    ("POST", "/api/v1/datasets/flowers/feedback"),
    ("POST", "/api/v1/trainings"),
    ("GET", "/api/v1/trainings/abc"),
    ("POST", "/api/v1/models/flowers/rollback"),
    ("GET", "/api/v1/models/flowers/export"),
]


@pytest.fixture(scope="module")
def client():
    # Port 1 has no Redis: a route that got past the key check would answer 503, not 401.
    app = create_app(ApiSettings(api_keys=("sesame",), redis_url="redis://127.0.0.1:1/0"))
    return app.test_client()


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_the_key_is_required(client, method, path):
    response = client.open(path, method=method, headers={"X-API-Key": "wrong"})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"


def test_a_full_dataset_refuses_new_images_but_not_relabels():
    app = create_app(ApiSettings(max_dataset_images=3, redis_url="redis://127.0.0.1:1/0"))
    with app.test_request_context():
        counts = {"a": 2, "b": 1}
        check_room("d", "a", counts, adding=False)  # re-sending an image already there
        with pytest.raises(ServiceError) as refused:
            check_room("d", "a", counts, adding=True)
        assert refused.value.status == 422 and refused.value.details == {"max_images": 3}


def test_the_thousand_and_first_label_is_refused():
    app = create_app(ApiSettings(redis_url="redis://127.0.0.1:1/0"))
    with app.test_request_context():
        counts = {f"label {i}": 1 for i in range(MAX_LABELS)}
        check_room("d", "label 7", counts, adding=True)
        with pytest.raises(ServiceError) as refused:
            check_room("d", "one more", counts, adding=True)
        assert refused.value.status == 422 and "1000 labels" in refused.value.message

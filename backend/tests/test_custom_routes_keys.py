"""With API_KEYS set, every dataset, training and custom-model route wants the key (before touching Redis)."""

from __future__ import annotations

import pytest

from api import create_app
from api.settings import ApiSettings

ROUTES = [
    ("POST", "/api/v1/datasets"), ("GET", "/api/v1/datasets"), ("GET", "/api/v1/datasets/flowers"),
    ("DELETE", "/api/v1/datasets/flowers"), ("POST", "/api/v1/datasets/flowers/images"),
    ("GET", "/api/v1/datasets/flowers/images"), ("DELETE", "/api/v1/datasets/flowers/images/ab12"),
    ("DELETE", "/api/v1/datasets/flowers/labels/tulip"), ("POST", "/api/v1/datasets/flowers/feedback"),
    ("POST", "/api/v1/trainings"), ("GET", "/api/v1/trainings/abc"),
    ("POST", "/api/v1/models/flowers/rollback"), ("GET", "/api/v1/models/flowers/export"),
]  # fmt: skip


@pytest.fixture(scope="module")
def client():
    # Port 1 has no Redis: a route that got past the key check would answer 503, not 401.
    app = create_app(ApiSettings(api_keys=("sesame",), redis_url="redis://127.0.0.1:1/0"))
    return app.test_client()


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_the_key_is_required(client, method, path):
    response = client.open(path, method=method, headers={"X-API-Key": "wrong"})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"

"""What only the real stack shows: the path through nginx and gunicorn (the API's behaviour
itself is tested on the fast tier, test_api.py)."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from api.schemas import PredictionResponseSchema
from ml_worker import golden

TIMEOUT = 30


@pytest.fixture(scope="module")
def url(live_stack) -> str:
    return live_stack.config.url


def test_a_golden_photo_is_named_through_nginx(url):
    photo = golden.PHOTOS[0]
    files = {"image": (photo.file, photo.path.read_bytes())}
    headers = {"X-Request-ID": "trace-me-123"}
    response = requests.post(f"{url}/api/v1/predictions", files=files, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert PredictionResponseSchema().validate(body) == {}
    assert body["predictions"][0]["label"] in photo.accepted
    assert response.headers["X-Request-ID"] == "trace-me-123"  # nginx passes a sane id through


def test_a_prediction_goes_uncompressed_and_the_openapi_document_compressed(url):
    """A ~1 KB answer is not worth a deflate stream on each end; big documents still are."""
    photo = golden.PHOTOS[0]
    files = {"image": (photo.file, photo.path.read_bytes())}
    answer = requests.post(f"{url}/api/v1/predictions", files=files, timeout=TIMEOUT)
    assert answer.status_code == 200 and "Content-Encoding" not in answer.headers
    assert int(answer.headers["Content-Length"]) == len(answer.content) < 2048
    document = requests.get(f"{url}/api/v1/openapi.json", timeout=TIMEOUT)
    assert document.status_code == 200 and document.headers["Content-Encoding"] == "gzip"


def test_docs_get_their_own_content_security_policy(url):
    docs = requests.get(url + "/api/v1/docs", timeout=TIMEOUT)
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "unsafe-inline" in docs.headers["Content-Security-Policy"]


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

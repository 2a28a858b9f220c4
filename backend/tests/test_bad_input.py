"""Every case of the bad-input corpus, sent through nginx to a real stack: each gets its
documented status and body, nothing leaks, and the server stays healthy afterwards."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from api.schemas import ErrorEnvelopeSchema, PredictionResponseSchema
from api.settings import ApiSettings

sys.path.insert(0, str(Path(__file__).parent))
import badinput

pytestmark = pytest.mark.integration

LEAKS = ("Traceback", 'File "', "/work", "site-packages", '.py"', ".py'", "werkzeug", "<html")
ERROR_CODES = {400: "invalid_request", 405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "unprocessable_image"}  # fmt: skip
IMAGE_KEYS = {"sha256", "format", "width", "height", "bytes"}
SMALL_LIMIT = 300_000
CASES = badinput.corpus(ApiSettings().max_upload_bytes)


def check(response: requests.Response, status: int, top1: frozenset[str] = frozenset()) -> dict:
    """The documented status and body, a request id, JSON only, and no internals in the text."""
    assert response.status_code == status, response.text[:500]
    assert response.headers.get("X-Request-ID")
    assert response.headers["Content-Type"].startswith("application/json")
    leaked = [leak for leak in LEAKS if leak in response.text]
    assert not leaked, f"response leaks {leaked}: {response.text[:500]}"
    body = response.json()
    if status == 200:
        assert PredictionResponseSchema().validate(body) == {}
        assert set(body["image"]) == IMAGE_KEYS  # the upload's name is never echoed or kept
        if top1:
            assert body["predictions"][0]["label"] in top1, body["predictions"][:3]
    else:
        assert ErrorEnvelopeSchema().validate(body) == {}
        assert body["error"]["code"] == ERROR_CODES[status]
        assert body["error"]["message"]
        assert body["request_id"]
    return body


def assert_healthy(base_url: str) -> None:
    assert requests.get(f"{base_url}/api/v1/health", timeout=5).status_code == 200


def api_rss(stack) -> int:
    """Resident memory of gunicorn and all its worker processes."""
    master = psutil.Process(stack.pid("api"))
    return sum(p.memory_info().rss for p in [master, *master.children(recursive=True)])


@pytest.fixture(scope="module")
def small_stack(stack_factory):
    """A stack with a 300 kB upload limit, for exact-limit checks with small bodies."""
    return stack_factory("badinput-small", env={"MAX_UPLOAD_BYTES": str(SMALL_LIMIT)})


def test_corpus_matches_live_limits(live_stack):
    limits = requests.get(f"{live_stack.config.url}/api/v1/models", timeout=5).json()["limits"]
    assert limits["max_upload_bytes"] == ApiSettings().max_upload_bytes
    assert limits["max_pixels"] < 8000 * 6000


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_case(live_stack, case: badinput.Case):
    response = case.make().post(f"{live_stack.config.url}/api/v1/predictions")
    check(response, case.status, case.top1)
    assert_healthy(live_stack.config.url)


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE"])
def test_wrong_method_gets_envelope_and_allow(live_stack, method: str):
    """TRACE is refused by nginx itself, the others by the API: same envelope, and an Allow header."""
    response = requests.request(method, f"{live_stack.config.url}/api/v1/predictions", timeout=10)
    check(response, 405)
    assert "POST" in response.headers["Allow"]


def test_decompression_bomb_refused_before_decoding(live_stack):
    """400 MP in 48 kB: refused from the header, fast, without the API's memory growing."""
    bomb = badinput.upload(badinput.decompression_bomb(), "bomb.png")
    before = api_rss(live_stack)
    started = time.perf_counter()
    response = bomb.post(f"{live_stack.config.url}/api/v1/predictions")
    elapsed = time.perf_counter() - started
    grown = api_rss(live_stack) - before
    body = check(response, 422)
    assert body["error"]["details"]["width"] == 20_000
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert grown < 50 * 2**20, f"API RSS grew by {grown / 2**20:.0f} MiB"


def test_exactly_at_upload_limit_accepted(small_stack):
    data = badinput.padded_png(SMALL_LIMIT)
    response = badinput.upload(data).post(f"{small_stack.config.url}/api/v1/predictions")
    assert check(response, 200)["image"]["bytes"] == SMALL_LIMIT


def test_one_byte_over_upload_limit_refused(small_stack):
    data = badinput.padded_png(SMALL_LIMIT + 1)
    response = badinput.upload(data).post(f"{small_stack.config.url}/api/v1/predictions")
    body = check(response, 413)
    assert body["error"]["details"]["max_upload_bytes"] == SMALL_LIMIT
    assert body["error"]["message"] == "The file is larger than the upload limit of 293 KB."  # 300000 / 1024
    assert_healthy(small_stack.config.url)


def test_body_far_over_limit_gets_nginx_json_envelope(small_stack):
    """nginx refuses it (client_max_body_size = limit + 1 MiB) with the API's envelope, not HTML."""
    data = badinput.padded_png(SMALL_LIMIT + 3 * 2**20)
    response = badinput.upload(data).post(f"{small_stack.config.url}/api/v1/predictions")
    body = check(response, 413)
    assert body["error"]["details"]["max_upload_bytes"] == SMALL_LIMIT
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert_healthy(small_stack.config.url)

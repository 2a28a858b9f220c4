"""Every case of the bad-input corpus (testsupport/badinput.py) on the fast tier: each gets its
documented status and body and nothing leaks. What only nginx and gunicorn show (nginx's own
refusals, the API process's memory under a decompression bomb) runs against a real stack."""

from __future__ import annotations

import time

import pytest
import requests

from api.schemas import PredictionResponseSchema
from api.settings import ApiSettings
from testsupport import badinput
from testsupport.envelope import assert_envelope, body_of
from testsupport.processes import tree_rss

LEAKS = ("Traceback", 'File "', "/work", "site-packages", '.py"', ".py'", "werkzeug", "<html")
ERROR_CODES = {
    400: "invalid_request",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_image",
}
IMAGE_KEYS = {"sha256", "format", "width", "height", "bytes"}
SMALL_LIMIT = 300_000
CASES = badinput.corpus(ApiSettings().max_upload_bytes)


def check(response, status: int, top1: frozenset[str] = frozenset()) -> dict:
    """The documented status and body, a request id, JSON only, and no internals in the text."""
    leaked = [leak for leak in LEAKS if leak in response.text]
    assert not leaked, f"response leaks {leaked}: {response.text[:500]}"
    if status != 200:
        return assert_envelope(response, status, ERROR_CODES[status])
    body = body_of(response)
    assert response.status_code == 200, body
    assert response.headers.get("X-Request-ID")
    assert PredictionResponseSchema().validate(body) == {}
    assert set(body["image"]) == IMAGE_KEYS  # the upload's name is never echoed or kept
    if top1:
        assert body["predictions"][0]["label"] in top1, body["predictions"][:3]
    return body


# -- fast tier --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_case(client, worker, case: badinput.Case):
    check(case.make().send(client), case.status, case.top1)
    assert client.get("/api/v1/health").status_code == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_wrong_method_gets_envelope_and_allow(client, method: str):
    response = client.open("/api/v1/predictions", method=method)
    check(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.fixture
def small_client(make_app):
    """An API with a 300 kB upload limit, for exact-limit checks with small bodies."""
    return make_app(max_upload_bytes=SMALL_LIMIT).test_client()


def test_exactly_at_upload_limit_accepted(small_client, worker):
    response = badinput.upload(badinput.padded_png(SMALL_LIMIT)).send(small_client)
    assert check(response, 200)["image"]["bytes"] == SMALL_LIMIT


def test_one_byte_over_upload_limit_refused(small_client):
    response = badinput.upload(badinput.padded_png(SMALL_LIMIT + 1)).send(small_client)
    body = check(response, 413)
    assert body["error"]["details"]["max_upload_bytes"] == SMALL_LIMIT
    assert body["error"]["message"] == "The file is larger than the upload limit of 293 KB."  # 300000 / 1024


# -- through nginx, on a real stack -----------------------------------------------------------
def test_corpus_matches_live_limits(live_stack):
    limits = requests.get(f"{live_stack.config.url}/api/v1/models", timeout=5).json()["limits"]
    assert limits["max_upload_bytes"] == ApiSettings().max_upload_bytes
    assert limits["max_pixels"] < 8000 * 6000


def test_trace_is_refused_by_nginx_with_envelope_and_allow(live_stack):
    response = requests.request("TRACE", f"{live_stack.config.url}/api/v1/predictions", timeout=10)
    check(response, 405)
    assert "POST" in response.headers["Allow"]


def test_decompression_bomb_refused_before_decoding(live_stack):
    """400 MP in 48 kB: refused from the header, fast, without the API's memory growing."""
    bomb = badinput.upload(badinput.decompression_bomb(), "bomb.png")
    before = tree_rss(live_stack.pid("api"))
    started = time.perf_counter()
    response = bomb.post(f"{live_stack.config.url}/api/v1/predictions")
    elapsed = time.perf_counter() - started
    grown = tree_rss(live_stack.pid("api")) - before
    body = check(response, 422)
    assert body["error"]["details"]["width"] == 20_000
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert grown < 50 * 2**20, f"API RSS grew by {grown / 2**20:.0f} MiB"


def test_body_far_over_limit_gets_nginx_json_envelope(stack_factory):
    """nginx refuses it (client_max_body_size = limit + 1 MiB) with the API's envelope, not HTML."""
    small_stack = stack_factory("badinput-small", env={"MAX_UPLOAD_BYTES": str(SMALL_LIMIT)})
    data = badinput.padded_png(SMALL_LIMIT + 3 * 2**20)
    response = badinput.upload(data).post(f"{small_stack.config.url}/api/v1/predictions")
    body = check(response, 413)
    assert body["error"]["details"]["max_upload_bytes"] == SMALL_LIMIT
    assert requests.get(f"{small_stack.config.url}/api/v1/health", timeout=5).status_code == 200

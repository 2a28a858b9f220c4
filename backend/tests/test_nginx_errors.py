"""nginx's own refusals carry the API's JSON envelope too (issue #12 item 9): malformed request
lines and headers, CL+TE, NUL bytes, long URLs and headers, unknown transfer codings, bad
ranges, HTTP versions; and what nginx lets through, gunicorn accepts (no plain-text errors)."""

from __future__ import annotations

import json

import pytest
import requests

from api.schemas import ErrorEnvelopeSchema
from testsupport.rawhttp import raw

pytestmark = pytest.mark.integration


def get(path: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra + b"\r\n"


CASES = {
    "64kb-header": (get(b"/api/v1/health", b"X-Big: " + b"a" * 65536 + b"\r\n"), 400, "invalid_request"),
    "bad-request-line": (b"GARBAGE\r\n\r\n", 400, "invalid_request"),
    "cl-and-te": (
        b"POST /api/v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n0\r\n\r\n",
        400,
        "invalid_request",
    ),
    "nul-in-path": (get(b"/api/v1/health%00"), 400, "invalid_request"),
    "long-url": (get(b"/api/v1/health?q=" + b"a" * 9000), 414, "uri_too_long"),
    "unknown-transfer-coding": (
        b"POST /api/v1/feedback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
        501,
        "not_implemented",
    ),
    "range-past-end": (get(b"/index.html", b"Range: bytes=99999999-\r\n"), 416, "range_not_satisfiable"),
    "missing-css": (get(b"/missing.css"), 404, "not_found"),  # was JSON served as text/css
    "http-3": (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
}


@pytest.mark.parametrize("name", CASES)
def test_nginx_refusals_are_json_envelopes(live_stack, name: str):
    request, status, code = CASES[name]
    got, headers, body = raw(live_stack.config.port, request)
    assert got == status, body[:300]
    assert headers["content-type"].startswith("application/json"), body[:300]
    envelope = json.loads(body)
    assert ErrorEnvelopeSchema().validate(envelope) == {}
    assert envelope["error"]["code"] == code and envelope["error"]["message"]
    assert envelope["request_id"] == headers["x-request-id"]


def test_urls_and_headers_nginx_admits_are_accepted_by_gunicorn(live_stack):
    """A 6 KB URL (over gunicorn's old 4094-byte line limit: a plain-text 414 was relayed) and
    150 headers (over its old 100) now reach the API."""
    url = f"{live_stack.config.url}/api/v1/health?q={'a' * 6000}"
    headers = {f"X-Extra-{i}": "v" for i in range(150)}
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["status"] == "ok"

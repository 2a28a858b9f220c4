"""The one assertion for the API's (and nginx's) error envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.schemas import ErrorEnvelopeSchema

RETRY_AFTER_STATUSES = (429, 503)


def body_of(response: Any) -> Any:
    """The JSON body of a requests.Response (json() method) or a Flask test response (json property)."""
    return response.json() if callable(response.json) else response.json


def check_envelope(
    status: int | None, headers: Mapping[str, str], body: Any, expected: int | set[int], code: str | None = None
) -> dict:
    """A failure a client can act on: an expected status, a JSON envelope that matches its schema
    with a message and the response's request id, and Retry-After on 429/503. Returns the body."""
    statuses = {expected} if isinstance(expected, int) else expected
    assert status in statuses, (status, body)
    assert headers["Content-Type"].startswith("application/json"), headers["Content-Type"]
    assert isinstance(body, dict) and ErrorEnvelopeSchema().validate(body) == {}, f"not an error envelope: {body!r}"
    assert body["error"]["message"].strip()
    if code is not None:
        assert body["error"]["code"] == code, body
    assert body["request_id"] and body["request_id"] == headers["X-Request-ID"]
    if status in RETRY_AFTER_STATUSES:
        assert int(headers["Retry-After"]) > 0
    return body


def assert_envelope(response: Any, expected: int | set[int], code: str | None = None) -> dict:
    """check_envelope for a requests.Response or a Flask test response."""
    return check_envelope(response.status_code, response.headers, body_of(response), expected, code)

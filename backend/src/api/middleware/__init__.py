"""What runs around every request, one module per concern: request ids, the client's
address, the per-client rate limit, API keys, CORS and draining unread bodies.

``init_app`` registers them in the order they must run.
"""

from __future__ import annotations

from flask import Flask, Response

from api.middleware import api_keys, body, cors, rate_limit, request_id


def _finish(response: Response) -> Response:
    body.drain_unread()
    request_id.add_header(response)
    response.headers["X-Content-Type-Options"] = "nosniff"
    cors.add_headers(response)
    return response


def init_app(app: Flask) -> None:
    app.before_request(request_id.assign)
    app.before_request(body.refuse_oversized)
    app.before_request(cors.answer_preflight)
    app.before_request(rate_limit.check)  # before the key check, so guessing API keys is rate-limited too
    app.before_request(api_keys.check)
    app.after_request(_finish)

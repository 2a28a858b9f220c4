"""One error envelope for every non-2xx answer: never HTML, never a traceback."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from api.schemas import ErrorEnvelopeSchema
from imgclf_contract.errors import ErrorCode, ServiceError

log = logging.getLogger("api.errors")
RETRY_AFTER_S = {429: 1, 503: 2}

_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
}
_envelope = ErrorEnvelopeSchema()


def envelope(code: ErrorCode, message: str, details: dict | None = None) -> dict:
    return _envelope.dump(
        {
            "error": {"code": code.value, "message": message, "details": details or {}},
            "request_id": g.get("request_id", ""),
        }
    )


def error_response(error: ServiceError) -> Response:
    response = jsonify(envelope(error.code, error.message, error.details))
    response.status_code = error.status
    retry_after = error.retry_after_s or RETRY_AFTER_S.get(error.status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def redis_error(exc: redis.RedisError) -> ServiceError:
    """Only an unreachable or silent Redis is 503; a full store is 507; anything else (a
    WRONGTYPE, a refused command) is our bug: logged with its traceback, answered 500."""
    request_id = g.get("request_id")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        log.warning("redis unavailable: %s", exc, extra={"request_id": request_id})
        return ServiceError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "The job store (Redis) is unavailable; try again shortly.",
            {"missing": "redis"},
        )
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        log.error("redis store full: %s", exc, extra={"request_id": request_id})
        return ServiceError(
            ErrorCode.STORAGE_FULL,
            "The store is full, so nothing new can be saved; an operator must make room. Nothing was lost.",
            {"store": "full"},
        )
    log.error("redis command failed", exc_info=exc, extra={"request_id": request_id})
    return ServiceError(ErrorCode.INTERNAL_ERROR, "Something went wrong on our side; it has been logged.")


def _http_message(exc: HTTPException) -> str:
    allowed = ", ".join(getattr(exc, "valid_methods", None) or [])
    return {
        404: "No such endpoint. See /api/v1/openapi.json for the API.",
        405: f"This endpoint does not accept that method (allowed: {allowed}).",
        413: "The request body is larger than the upload limit.",
    }.get(exc.code or 500, exc.description or exc.name)


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def handle_service_error(exc: ServiceError) -> Response:
        return error_response(exc)

    @app.errorhandler(redis.RedisError)
    def handle_redis(exc: redis.RedisError) -> Response:
        return error_response(redis_error(exc))

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, ErrorCode.INTERNAL_ERROR)
        response = jsonify(envelope(code, _http_message(exc)))
        response.status_code = status
        if getattr(exc, "valid_methods", None):  # RFC 9110: a 405 must say what is allowed
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return error_response(
            ServiceError(ErrorCode.INTERNAL_ERROR, "Something went wrong on our side; it has been logged.")
        )

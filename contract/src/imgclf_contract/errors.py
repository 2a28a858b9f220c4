"""Error codes shared by the API, the worker and clients, with their HTTP status."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Machine-readable ``error.code`` values of the API's error envelope."""

    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"  # nginx only: /metrics from a non-local address
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    URI_TOO_LONG = "uri_too_long"  # nginx only, as the four below
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    NOT_IMPLEMENTED = "not_implemented"
    HTTP_VERSION_NOT_SUPPORTED = "http_version_not_supported"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNPROCESSABLE_IMAGE = "unprocessable_image"
    VALIDATION_FAILED = "validation_failed"
    RATE_LIMITED = "rate_limited"
    QUEUE_FULL = "queue_full"
    INTERNAL_ERROR = "internal_error"
    BAD_GATEWAY = "bad_gateway"
    SERVICE_UNAVAILABLE = "service_unavailable"
    TIMEOUT = "timeout"
    STORAGE_FULL = "storage_full"  # the store Redis reached its maxmemory
    CLIENT_CLOSED_REQUEST = "client_closed_request"  # logged only: nobody is left to read it

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.URI_TOO_LONG: 414,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.HTTP_VERSION_NOT_SUPPORTED: 505,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.UNPROCESSABLE_IMAGE: 422,
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.QUEUE_FULL: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.BAD_GATEWAY: 502,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.STORAGE_FULL: 507,
    ErrorCode.CLIENT_CLOSED_REQUEST: 499,  # nginx's convention
}


class ServiceError(Exception):
    """An expected failure with a code, a message a person can act on, and details."""

    def __init__(
        self, code: ErrorCode, message: str, details: dict | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.retry_after_s = retry_after_s

    @property
    def status(self) -> int:
        return self.code.status

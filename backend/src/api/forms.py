"""Reading the request's form: exactly one file in the expected field, kept in memory."""

from __future__ import annotations

import io
import typing as t

from flask import Request
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from api.multipart import InMemoryFormParser
from imgclf_contract.errors import ErrorCode, ServiceError


class InMemoryUploads(Request):
    """werkzeug spools a file part over 500 KB to a temporary file (writing it to disk and reading
    it back costs ~3 ms for a 3 MB photo); here every part stays in memory, which the
    whole-request limit (MAX_UPLOAD_BYTES + 1 MiB, checked before the body is read) bounds,
    and a canonical body is split in one pass (``api.multipart``)."""

    form_data_parser_class = InMemoryFormParser

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> t.IO[bytes]:
        return io.BytesIO()


def parse_form(request: Request) -> None:
    """Parse the body once; werkzeug refuses more than MAX_FORM_PARTS parts with the same 413 as
    an oversized body, so a body within the size limit that is refused had too many parts: 400."""
    try:
        request.files  # noqa: B018 - parsing is the point; form and files are cached on the request
    except RequestEntityTooLarge:
        length, limit = request.content_length, request.max_content_length
        if length is None or limit is None or length > limit:
            raise
        parts = request.max_form_parts
        raise ServiceError(
            ErrorCode.INVALID_REQUEST,
            f"The multipart body has more than {parts} parts; send one file (and top_k).",
            {"max_form_parts": parts},
        ) from None


def single_file(request: Request, field: str) -> FileStorage:
    """The one uploaded file in ``field``, or a 400 saying what was wrong."""
    parse_form(request)
    files = request.files.getlist(field)
    if len(files) == 1:
        return files[0]
    if len(files) > 1:
        message = f"Send exactly one file in the field '{field}' (got {len(files)})."
    elif not (request.mimetype or "").startswith("multipart/form-data"):
        message = f"Send the image as multipart/form-data in the field '{field}' (got {request.mimetype or 'no body'})."
    else:
        present = sorted(request.files) + sorted(request.form)
        message = f"The multipart body has no file in the field '{field}' (fields sent: {present or 'none'})."
    raise ServiceError(ErrorCode.INVALID_REQUEST, message, {"field": field})


def load_form(schema: Schema, form: dict) -> dict:
    try:
        return schema.load({k: v for k, v in form.items() if k in schema.fields}, unknown="exclude")
    except ValidationError as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, first_message(exc), {"fields": exc.messages}) from None


def first_message(exc: ValidationError) -> str:
    field, messages = next(iter(exc.normalized_messages().items()))
    text = messages[0] if isinstance(messages, list) else str(messages)
    return f"Invalid field '{field}': {text}"


def load_json(schema: Schema, request: Request) -> dict:
    """The JSON object body validated by ``schema``, or a 400 saying what was wrong."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ServiceError(ErrorCode.INVALID_REQUEST, "Send a JSON object (Content-Type: application/json).")
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, first_message(exc), {"fields": exc.messages}) from None

"""Every request gets an id (the caller's, when sane) that follows it into logs and jobs."""

from __future__ import annotations

import re
import uuid

from flask import Response, g, request

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def assign() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex


def add_header(response: Response) -> None:
    response.headers["X-Request-ID"] = g.get("request_id", "")

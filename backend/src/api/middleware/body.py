"""Reading what is left of a request we answered early (401, 429, ...).

Closing a connection with unread upload bytes makes the kernel reset it, and
nginx then reports 502 instead of our answer.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream


def refuse_oversized() -> None:
    """413 on any route for a declared length over the whole-request limit (nginx refuses it
    first; this is for callers of the API port), before anything tries to read it."""
    limit = request.max_content_length
    if request.content_length is not None and limit is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def drain_unread() -> None:
    """Bodies over the whole-request limit are never read (werkzeug refuses to open them:
    the 413 goes out and the connection closes); anything smaller is read to its end."""
    try:
        stream = request.stream
    except RequestEntityTooLarge:
        return
    if isinstance(stream, LimitedStream) and not stream.is_exhausted:
        stream.exhaust()

"""Reading what is left of a request we answered early (401, 429, ...).

Closing a connection with unread upload bytes makes the kernel reset it, and
nginx then reports 502 instead of our answer.
"""

from __future__ import annotations

from flask import request
from werkzeug.wsgi import LimitedStream


def drain_unread() -> None:
    stream = request.stream
    if isinstance(stream, LimitedStream) and not stream.is_exhausted:
        stream.exhaust()

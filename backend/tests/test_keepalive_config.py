"""nginx closes an idle upstream connection before gunicorn does: the other way round, a POST
that nginx sends on a connection gunicorn is closing at that moment comes back as a 502 (nginx
does not retry non-idempotent requests)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _upstream_keepalive_timeout_s() -> int:
    template = (ROOT / "nginx" / "nginx.conf.template").read_text()
    upstream = re.search(r"upstream api \{\n(.*?)\n\s*\}\n", template, re.S)  # to the closing line
    assert upstream, "no upstream api block"
    timeout = re.search(r"^\s*keepalive_timeout (\d+)s;", upstream.group(1), re.M)
    assert timeout, "the upstream block sets no keepalive_timeout (nginx's default is 60 s)"
    return int(timeout.group(1))


def _gunicorn_keepalive_s() -> int:
    conf = (ROOT / "backend" / "gunicorn.conf.py").read_text()
    found = re.search(r"^keepalive = (\d+)$", conf, re.M)
    assert found, "gunicorn.conf.py sets no keepalive"
    return int(found.group(1))


def test_nginx_drops_idle_api_connections_before_gunicorn_closes_them() -> None:
    assert _upstream_keepalive_timeout_s() < _gunicorn_keepalive_s()

"""The classify request path's economy (issue #15): uploads stay in memory, the Redis round
trips per request per role are what we designed, redis-py parses with hiredis, and a cache
hit is answered from the image header without decoding. All on real Redis servers."""

from __future__ import annotations

import importlib.metadata
import re
import tempfile

import pytest
import werkzeug.formparser

from api.services import EXTENSION, Services
from testsupport import badinput

BIG_LIMIT = 2_000_000  # well over werkzeug's 500 KB spooling threshold


def services_of(app) -> Services:
    return app.extensions[EXTENSION]


@pytest.fixture
def no_temp_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every temporary file werkzeug's form parser (or anyone) would open meanwhile."""
    opened: list[str] = []

    def spy(name: str, real):
        def make(*args, **kwargs):
            opened.append(name)
            return real(*args, **kwargs)

        return make

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, spy(name, getattr(tempfile, name)))
        if hasattr(werkzeug.formparser, name):
            monkeypatch.setattr(werkzeug.formparser, name, spy(name, getattr(werkzeug.formparser, name)))
    return opened


@pytest.fixture
def big_client(make_app):
    return make_app(max_upload_bytes=BIG_LIMIT).test_client()


def test_a_big_upload_exactly_at_the_limit_is_classified_in_memory(big_client, worker, no_temp_files):
    response = badinput.upload(badinput.padded_png(BIG_LIMIT)).send(big_client)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["image"]["bytes"] == BIG_LIMIT
    assert no_temp_files == []


def test_a_big_upload_one_byte_over_the_limit_is_413_in_memory(big_client, no_temp_files):
    response = badinput.upload(badinput.padded_png(BIG_LIMIT + 1)).send(big_client)
    body = response.get_json()
    assert response.status_code == 413, body
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"]["max_upload_bytes"] == BIG_LIMIT
    assert no_temp_files == []


# -- hiredis --------------------------------------------------------------------------------
@pytest.mark.parametrize("package", ["imgclf-api", "ml-worker"])
def test_hiredis_is_a_dependency_of_every_hot_redis_user(package: str):
    requirements = importlib.metadata.requires(package) or []
    assert any(re.match(r"hiredis\b", r) for r in requirements), requirements


def test_redis_py_parses_with_hiredis(app):
    """Every Redis role's client of the API (and any client from redis_client.connect, which the
    workers use too) reads replies with the C parser, not redis-py's pure-Python one."""
    from redis._parsers import _HiredisParser

    for client in services_of(app).redis_pools:
        assert client.ping()
        connection = client.connection_pool.get_connection()
        try:
            assert isinstance(connection._parser, _HiredisParser), type(connection._parser)
        finally:
            client.connection_pool.release(connection)

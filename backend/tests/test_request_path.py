"""The classify request path's economy (issue #15): uploads stay in memory, the Redis round
trips per request per role are what we designed, redis-py parses with hiredis, and a cache
hit is answered from the image header without decoding. All on real Redis servers."""

from __future__ import annotations

import importlib.metadata
import re
import tempfile
import threading
import time
from collections import Counter

import pytest
import werkzeug.formparser
from prometheus_client import REGISTRY
from redis.connection import AbstractConnection

from api.queue import Refusal
from api.services import EXTENSION, Services
from api.store import models
from imgclf_contract import keys
from imgclf_contract.errors import ServiceError
from imgclf_contract.jobs import TENSOR_MARGIN_MS, now_ms
from imgclf_contract.model_record import ModelRecord
from testsupport import badinput
from testsupport.processes import wait_until
from testsupport.redis_server import RedisServer

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


# -- Redis round trips per request, per role ----------------------------------------------------
@pytest.fixture(scope="module")
def other_redis(tmp_path_factory: pytest.TempPathFactory):
    """Two more real Redis servers, so store, queue (the session's, where the worker is) and cache
    are three, as `make up` runs them."""
    store, cache = RedisServer(tmp_path_factory.mktemp("store")), RedisServer(tmp_path_factory.mktemp("cache"))
    yield store, cache
    store.stop()
    cache.stop()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Round trips (one send per command or pipeline) to each Redis port from this thread, where
    the test client runs the request; the in-process worker's threads are not counted. The model
    catalogue's view (refreshed every SNAPSHOT_TTL_S per process, whatever the load) is held still."""
    monkeypatch.setattr(models, "SNAPSHOT_TTL_S", 3600.0)
    counts: Counter = Counter()
    send = AbstractConnection.send_packed_command
    here = threading.get_ident()

    def counting(connection: AbstractConnection, command, check_health: bool = True) -> None:
        if threading.get_ident() == here:
            counts[connection.port] += 1
        send(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return counts


def _per_role(counts: Counter, ports: dict[str, int]) -> dict[str, int]:
    return {role: counts[port] for role, port in ports.items()}


def _classify_distinct(client, n: int, counts: Counter, ports: dict[str, int], offset: int = 0) -> dict[str, float]:
    """Round trips per request per role over ``n`` uploads never seen before (cache misses)."""
    counts.clear()
    for i in range(n):
        response = badinput.upload(badinput.padded_png(60_000 + offset + i)).send(client)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["cached"] is False
    return {role: count / n for role, count in _per_role(counts, ports).items()}


@pytest.mark.parametrize(
    ("cache_ttl_s", "miss", "hit"),
    [
        (86_400, {"store": 1, "queue": 2, "cache": 2}, {"store": 1, "queue": 0, "cache": 1}),
        (0, {"store": 1, "queue": 2, "cache": 0}, None),
    ],
    ids=["cache-on", "cache-off"],
)
def test_round_trips_per_request_with_three_redis_roles(
    make_app, redis_server, other_redis, worker, round_trips, cache_ttl_s, miss, hit
):
    """Miss: admission (queue), job + wait for its answer together (queue), the prediction
    (store), the cache lookup and the fresh answer (cache). Hit: the lookup and the prediction."""
    store, cache = other_redis
    store.flush()
    cache.flush()
    app = make_app(
        redis_url=store.url, queue_redis_url=redis_server.url, cache_redis_url=cache.url, cache_ttl_s=cache_ttl_s
    )
    client = app.test_client()
    ports = {"store": store.port, "queue": redis_server.port, "cache": cache.port}
    _classify_distinct(client, 1, round_trips, ports)  # connects, reads the catalogue
    assert _classify_distinct(client, 4, round_trips, ports, offset=1) == miss
    if hit is not None:
        round_trips.clear()
        response = badinput.upload(badinput.padded_png(60_001)).send(client)
        assert response.get_json()["cached"] is True
        assert _per_role(round_trips, ports) == hit


def test_round_trips_per_request_with_one_redis(make_app, worker, round_trips, redis_server):
    """One Redis for all roles: the cache lookup rides with admission, the fresh answer with the prediction."""
    client = make_app().test_client()
    ports = {"all": redis_server.port}
    _classify_distinct(client, 1, round_trips, ports)
    assert _classify_distinct(client, 4, round_trips, ports, offset=1) == {"all": 3}
    round_trips.clear()
    assert badinput.upload(badinput.padded_png(60_001)).send(client).get_json()["cached"] is True
    assert _per_role(round_trips, ports) == {"all": 2}


# -- cache hits without decoding ----------------------------------------------------------------
def _preprocessed() -> float:
    return REGISTRY.get_sample_value("imgclf_preprocess_seconds_count") or 0.0


def test_a_cache_hit_is_answered_from_the_header_without_decoding(app, client, worker, monkeypatch):
    """An EXIF-rotated JPEG (stored 600x400, displayed 400x600): the hit reports what the miss did,
    without preprocessing and without taking a decode slot."""
    photo = badinput.exif_rotated(badinput.golden("rocket.jpg").resize((400, 600)), orientation=6)
    miss = badinput.upload(photo, "rotated.jpg", "image/jpeg").send(client).get_json()
    assert miss["cached"] is False and miss["image"]["width"] == 400 and miss["image"]["height"] == 600
    slots = services_of(app).decode_slots
    taken: list[float | None] = []
    real_acquire = slots.acquire
    monkeypatch.setattr(slots, "acquire", lambda timeout_s=None: taken.append(timeout_s) or real_acquire(timeout_s))
    before = _preprocessed()
    hit = badinput.upload(photo, "rotated.jpg", "image/jpeg").send(client).get_json()
    assert hit["cached"] is True
    assert hit["image"] == miss["image"]
    assert hit["predictions"] == miss["predictions"]
    assert _preprocessed() == before and taken == []
    assert hit["timings_ms"]["inference"] == 0 and hit["timings_ms"]["queue"] == 0


# -- the job and the wait for its answer in one round trip: the refusals still come at once ----------
RECORD = ModelRecord("efficientnet_lite0", "1", 224, "", 2, [{"index": i} for i in range(2)])
TENSOR = bytes(224 * 224 * 3)


def _run_job(app) -> tuple[ServiceError, float]:
    """Submit a job with a 10 s deadline; the refusal and how long it took to come."""
    started = time.monotonic()
    with app.app_context(), pytest.raises(ServiceError) as refused:
        services_of(app).queue.run("request-1", RECORD, TENSOR, now_ms() + 10_000)
    return refused.value, time.monotonic() - started


def _fake_live_worker(redis_db) -> None:
    """A fresh stamp in the model's serving set (Redis's clock), but nobody reading the stream."""
    seconds, micros = redis_db.time()
    redis_db.zadd(keys.serving(RECORD.name, RECORD.version), {"nobody": seconds * 1000 + micros // 1000})


def _nothing_left_behind(app, redis_db) -> None:
    assert not redis_db.keys(keys.reply("*")), "a refusal was left on a reply list"
    assert not redis_db.keys(keys.tensor("*")), "a refused job's tensor was left behind"
    with app.app_context():  # the connection that carried the refused job is clean for the next command
        assert all(client.ping() for client in services_of(app).redis_pools)


def test_a_job_refused_for_want_of_a_worker_comes_back_at_once(make_app, redis_db):
    app = make_app()
    error, took = _run_job(app)
    assert error.status == 503 and error.details["missing"] == "workers"
    assert took < 1.0
    _nothing_left_behind(app, redis_db)


def test_a_job_refused_by_a_full_queue_comes_back_at_once(make_app, redis_db):
    app = make_app(max_queue=2)
    _fake_live_worker(redis_db)
    for _ in range(2):
        redis_db.xadd(keys.jobs(RECORD.name, RECORD.version), {"v": "0"})
    error, took = _run_job(app)
    assert error.status == 429 and error.details == {"max_queue": 2}
    assert took < 1.0
    assert redis_db.xlen(keys.jobs(RECORD.name, RECORD.version)) == 2
    _nothing_left_behind(app, redis_db)


def test_a_full_queue_redis_refuses_the_job_at_once(make_app, redis_db):
    app = make_app()
    _fake_live_worker(redis_db)
    limit = redis_db.config_get("maxmemory")["maxmemory"]
    redis_db.config_set("maxmemory", 1)
    try:
        error, took = _run_job(app)
    finally:
        redis_db.config_set("maxmemory", limit)
    assert error.status == 503 and error.details == {"missing": "queue memory"}
    assert took < 1.0
    _nothing_left_behind(app, redis_db)


def test_a_job_nobody_takes_keeps_its_tensor_only_until_its_deadline_and_the_margin(make_app, redis_db):
    """The tensor travels beside the stream entry (keys.tensor); unanswered, it expires on its
    own, TENSOR_MARGIN_MS after the job's deadline (read while the API still waits)."""
    app = make_app()
    _fake_live_worker(redis_db)
    deadline_ms = now_ms() + 3_000
    outcome: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                services_of(app).queue.run("request-1", RECORD, TENSOR, deadline_ms)
            except ServiceError as exc:
                outcome.append(exc)

    waiting = threading.Thread(target=run)
    waiting.start()
    try:
        entries = wait_until(lambda: redis_db.xrange(keys.jobs(RECORD.name, RECORD.version)), 2)
        ((_entry_id, fields),) = entries
        tensor_key = keys.tensor(fields[b"job_id"].decode())
        ttl_ms, left_ms = redis_db.pttl(tensor_key), deadline_ms - now_ms()
        assert left_ms + TENSOR_MARGIN_MS - 500 < ttl_ms <= left_ms + TENSOR_MARGIN_MS + 500
        assert redis_db.get(tensor_key) == TENSOR
        assert b"tensor" not in fields and len(b"".join(fields.values())) < 200
    finally:
        waiting.join(10)
    assert [e.status for e in outcome] == [504]


def test_near_the_memory_limit_a_job_is_queued_whole_or_refused_leaving_nothing(make_app, redis_db):
    """Limits from just under to just over what the job needs: either the SET of its tensor is
    refused (the script then must not queue a job without it) or the SET fits and takes Redis
    over the limit (the refused script's 503 must not leave the tensor holding the full Redis
    until it expires), or the whole job fits. Where each case falls depends on Redis's
    allocator, so the limit sweeps across all three."""
    app = make_app()
    _fake_live_worker(redis_db)
    stream = keys.jobs(RECORD.name, RECORD.version)
    limit = redis_db.config_get("maxmemory")["maxmemory"]
    statuses = []
    try:
        for tenths in range(2, 30):
            redis_db.delete(stream, *redis_db.keys(keys.tensor("*")))
            redis_db.config_set("maxmemory", redis_db.info("memory")["used_memory"] + len(TENSOR) * tenths // 10)
            with app.app_context(), pytest.raises(ServiceError) as refused:
                services_of(app).queue.run("request-1", RECORD, TENSOR, now_ms() + 200)
            redis_db.config_set("maxmemory", limit)
            statuses.append(refused.value.status)
            queued, tensors = redis_db.xlen(stream), len(redis_db.keys(keys.tensor("*")))
            if refused.value.status == 503:
                assert refused.value.details == {"missing": "queue memory"}
                assert (queued, tensors) == (0, 0), f"{tenths / 10}x the tensor: {queued} jobs, {tensors} tensors"
            else:  # queued whole; nobody reads it: the deadline passes
                assert refused.value.status == 504 and (queued, tensors) == (1, 1)
    finally:
        redis_db.config_set("maxmemory", limit)
    assert statuses[0] == 503 and statuses[-1] == 504  # the sweep crossed the limit
    redis_db.delete(stream, *redis_db.keys(keys.tensor("*")))  # the last job, queued whole
    _nothing_left_behind(app, redis_db)


def test_the_enqueue_script_never_queues_a_job_whose_tensor_is_missing(make_app, redis_db):
    """Pipelined after the tensor's SET, the script runs even when that SET was refused."""
    app = make_app()
    _fake_live_worker(redis_db)
    queue = services_of(app).queue
    script_keys, args = queue._checks(RECORD)
    status = queue._enqueue(keys=[*script_keys, keys.reply("j"), keys.tensor("j")], args=[*args, "v", "3"])
    assert status == Refusal.NO_TENSOR and redis_db.xlen(keys.jobs(RECORD.name, RECORD.version)) == 0
    with app.app_context(), pytest.raises(ServiceError) as refused:
        queue._raise_for(RECORD, status)
    assert refused.value.status == 503 and refused.value.details == {"missing": "queue memory"}


def test_a_redis_that_forgot_the_script_still_takes_the_job(app, client, worker, redis_db):
    """After a Redis restart (here SCRIPT FLUSH) the script is loaded again and the job runs."""
    assert badinput.upload(badinput.padded_png(70_000)).send(client).status_code == 200
    redis_db.script_flush()
    response = badinput.upload(badinput.padded_png(70_001)).send(client)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["cached"] is False

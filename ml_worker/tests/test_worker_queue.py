"""The worker's queue handling against a real Redis server (the session's, emptied per test)
and the real model."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import redis

from imgclf_contract import keys
from imgclf_contract.jobs import Job, Result, now_ms
from ml_worker import artifacts, golden
from ml_worker.backends import load_backend
from ml_worker.queue import JobConsumer
from ml_worker.settings import WorkerSettings
from ml_worker.worker import Worker, model_record
from testsupport.processes import wait_until


@pytest.fixture(scope="module")
def worker_parts():
    settings = WorkerSettings.from_env({"CLAIM_IDLE_MS": "300", "BATCH_WAIT_MS": "20"})
    model = artifacts.load(settings)
    return settings, model, load_backend("litert", model, 2)


def _tensors() -> list[bytes]:
    return [tensor.tobytes() for tensor in golden.tensors()]


def _enqueue(client: redis.Redis, tensor: bytes, job_id: str, deadline_ms: int | None = None) -> None:
    job = Job(job_id, f"req-{job_id}", deadline_ms or now_ms() + 10_000, tensor)
    client.xadd(keys.JOBS_STREAM, job.to_fields())


def _reply(client: redis.Redis, job_id: str) -> Result | None:
    raw = client.lpop(keys.reply(job_id))
    return Result.from_json(raw) if raw else None


def _blocked_reading(client: redis.Redis) -> bool:
    """Some connection is blocked in XREADGROUP (a consumer waiting for jobs)."""
    return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in client.client_list())


def test_waiting_jobs_are_taken_and_answered_as_one_batch(redis_db, worker_parts):
    settings, model, backend = worker_parts
    worker = Worker(settings, backend, model_record(model), redis_db)
    worker.consumer.ensure_group()
    tensors = _tensors()
    for i, tensor in enumerate(tensors):
        _enqueue(redis_db, tensor, f"j{i}")
    deliveries = worker.consumer.next_batch(max_batch=8, wait_ms=20, block_ms=100)
    assert len(deliveries) == 3
    worker.process(deliveries)
    results = [_reply(redis_db, f"j{i}") for i in range(3)]
    assert len({r.batch_id for r in results}) == 1 and all(r.batch_size == 3 for r in results)
    labels = model.labels()
    for photo, result in zip(golden.PHOTOS, results, strict=True):
        assert labels[result.top[0][0]].name in photo.accepted_top1
        assert len(result.top) == 10 and result.deliveries == 1
    assert redis_db.xlen(keys.JOBS_STREAM) == 0  # acked and deleted
    assert redis_db.xpending(keys.JOBS_STREAM, keys.JOBS_GROUP)["pending"] == 0


def test_batches_are_capped_at_max_batch(redis_db, worker_parts):
    settings, _model, _backend = worker_parts
    consumer = JobConsumer(redis_db, "w-cap", settings.claim_idle_ms, reply_ttl_s=10)
    consumer.ensure_group()
    tensor = _tensors()[0]
    for i in range(5):
        _enqueue(redis_db, tensor, f"c{i}")
    assert len(consumer.next_batch(max_batch=2, wait_ms=0, block_ms=100)) == 2
    assert len(consumer.next_batch(max_batch=8, wait_ms=0, block_ms=100)) == 3


def test_jobs_past_their_deadline_are_skipped_without_inference(redis_db, worker_parts):
    settings, model, backend = worker_parts
    worker = Worker(settings, backend, model_record(model), redis_db)
    worker.consumer.ensure_group()
    _enqueue(redis_db, _tensors()[0], "late", deadline_ms=now_ms() - 1)
    worker.process(worker.consumer.next_batch(8, 0, 100))
    assert _reply(redis_db, "late") is None
    assert worker.stats.expired_total == 1 and worker.stats.batches_total == 0
    assert redis_db.xpending(keys.JOBS_STREAM, keys.JOBS_GROUP)["pending"] == 0


def test_malformed_entries_are_dropped_not_retried_forever(redis_db, worker_parts):
    settings, model, backend = worker_parts
    worker = Worker(settings, backend, model_record(model), redis_db)
    worker.consumer.ensure_group()
    redis_db.xadd(keys.JOBS_STREAM, {"v": "1", "job_id": "bad"})
    worker.process(worker.consumer.next_batch(8, 0, 100))
    assert redis_db.xlen(keys.JOBS_STREAM) == 0


def test_jobs_of_a_dead_consumer_are_reclaimed_with_their_delivery_count(redis_db, worker_parts):
    _settings, model, backend = worker_parts
    settings = WorkerSettings.from_env(
        {"CLAIM_IDLE_MS": "1500"}
    )  # long enough that "too early" holds on a busy machine
    dead = JobConsumer(redis_db, "dead", settings.claim_idle_ms, reply_ttl_s=10)
    dead.ensure_group()
    for i, tensor in enumerate(_tensors()):
        _enqueue(redis_db, tensor, f"o{i}")
    assert len(dead.next_batch(8, 0, 100)) == 3  # taken, never answered: the consumer "dies"
    survivor = Worker(settings, backend, model_record(model), redis_db)
    taken = time.monotonic()
    assert survivor.consumer.next_batch(8, 0, 50) == []  # nothing new, and too early to claim
    claimed = wait_until(lambda: survivor.consumer.next_batch(8, 0, 50), timeout_s=10)
    assert time.monotonic() - taken >= settings.claim_idle_ms / 1000  # not before CLAIM_IDLE_MS
    assert sorted(d.job.job_id for d in claimed) == ["o0", "o1", "o2"]
    assert all(d.deliveries == 2 for d in claimed)
    survivor.process(claimed)
    assert all(_reply(redis_db, f"o{i}").deliveries == 2 for i in range(3))
    assert survivor.stats.claimed_total == 3
    assert redis_db.xpending(keys.JOBS_STREAM, keys.JOBS_GROUP)["pending"] == 0


def test_model_record_carries_the_label_table(worker_parts):
    _settings, model, _backend = worker_parts
    record = model_record(model)
    assert record.version == model.version and len(record.labels) == 1000
    assert record.labels[967] == {"index": 967, "wnid": "n07920052", "name": "espresso", "synonyms": ["espresso"]}
    assert record.labels[840]["synonyms"] == ["swab", "swob", "mop"]  # searchable by any name
    assert record.input_size == 224


def test_an_idle_worker_answers_a_lone_job_without_waiting_for_company(redis_db, worker_parts):
    """A job that arrives while the worker is blocked idle is not held for the batch window."""
    settings, _model, _backend = worker_parts
    consumer = JobConsumer(redis_db, "w-idle", settings.claim_idle_ms, reply_ttl_s=10)
    consumer.ensure_group()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(consumer.next_batch, max_batch=8, wait_ms=3000, block_ms=2000)
        assert wait_until(lambda: _blocked_reading(redis_db), timeout_s=10)  # idle, blocked on an empty stream
        enqueued = time.monotonic()
        _enqueue(redis_db, _tensors()[0], "lone")
        batch = pending.result(timeout=10)
    assert [d.job.job_id for d in batch] == ["lone"]
    assert time.monotonic() - enqueued < 1.5  # the 3 s batch window was not spent


class _BrokenBackend:
    """Stands in for a model that fails on its input: only the failure path is under test."""

    name = "broken"

    def predict(self, batch):
        raise RuntimeError("simulated inference failure")


def test_an_inference_failure_answers_every_job_and_keeps_the_worker_alive(redis_db, worker_parts):
    settings, model, _backend = worker_parts
    worker = Worker(settings, _BrokenBackend(), model_record(model), redis_db)
    worker.consumer.ensure_group()
    for i, tensor in enumerate(_tensors()):
        _enqueue(redis_db, tensor, f"f{i}")
    worker.process(worker.consumer.next_batch(8, 0, 100))
    results = [_reply(redis_db, f"f{i}") for i in range(3)]
    assert all(r is not None and r.error and "simulated" in r.error and r.top == [] for r in results)
    assert worker.stats.failed_total == 3
    assert redis_db.xpending(keys.JOBS_STREAM, keys.JOBS_GROUP)["pending"] == 0  # acked, not redelivered forever

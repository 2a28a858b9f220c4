"""The worker's queue handling against a real Redis server (the session's, emptied per test)
and the real models (Lite0 and Lite2, LiteRT)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import redis

from imgclf_contract import keys
from imgclf_contract.jobs import Job, Result, now_ms
from ml_worker import golden
from ml_worker.queue import JobConsumer
from ml_worker.settings import WorkerSettings
from ml_worker.worker import ServedModel, Worker
from testsupport.processes import wait_until

LITE0, LITE2 = "efficientnet_lite0", "efficientnet_lite2"


@pytest.fixture
def client(redis_db: redis.Redis) -> redis.Redis:
    return redis_db


@pytest.fixture(scope="module")
def served(litert_models) -> dict[str, ServedModel]:
    """Lite0 and Lite2 as one worker loads them (LiteRT, warmed up; loaded once per session)."""
    return {m.record.name: m for m in litert_models.models}


@pytest.fixture(scope="module")
def settings() -> WorkerSettings:
    return WorkerSettings.from_env({"CLAIM_IDLE_MS": "300", "BATCH_WAIT_MS": "20"})


def _worker(settings: WorkerSettings, served: dict[str, ServedModel], client: redis.Redis, *names: str) -> Worker:
    worker = Worker(settings, [served[n] for n in names or (LITE0,)], client)
    worker.consumer.ensure_groups()
    return worker


def _tensors(size: int = 224) -> list[bytes]:
    return [tensor.tobytes() for tensor in golden.tensors(size)]


def _enqueue(
    client: redis.Redis, tensor: bytes, job_id: str, deadline_ms: int | None = None, model: str = LITE0
) -> None:
    pipe = client.pipeline(transaction=False)
    Job(job_id, f"req-{job_id}", deadline_ms or now_ms() + 10_000, model, "1", tensor).add_to(pipe)
    pipe.execute()


def _reply(client: redis.Redis, job_id: str) -> Result | None:
    raw = client.lpop(keys.reply(job_id))
    return Result.from_json(raw) if raw else None


def _blocked_reading(client: redis.Redis) -> bool:
    """Some connection is blocked in XREADGROUP (a consumer waiting for jobs)."""
    return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in client.client_list())


def _pending(client: redis.Redis, model: str = LITE0) -> int:
    return client.xpending(keys.jobs(model, "1"), keys.JOBS_GROUP)["pending"]


def test_waiting_jobs_are_taken_and_answered_as_one_batch(client, settings, served):
    worker = _worker(settings, served, client)
    for i, tensor in enumerate(_tensors()):
        _enqueue(client, tensor, f"j{i}")
    (batch,) = worker.consumer.next_batches(max_batch=8, wait_ms=20, block_ms=100)
    assert len(batch.deliveries) == 3
    worker.process(batch)
    results = [_reply(client, f"j{i}") for i in range(3)]
    assert len({r.batch_id for r in results}) == 1 and all(r.batch_size == 3 for r in results)
    labels = served[LITE0].record.labels
    for photo, result in zip(golden.PHOTOS, results, strict=True):
        ranked = [(labels[i]["name"], p) for i, p in result.top]
        assert photo.failure(ranked) is None
        assert len(result.top) == 10 and result.deliveries == 1
    assert client.xlen(keys.jobs(LITE0, "1")) == 0  # acked and deleted, and so are the tensors
    assert _pending(client) == 0 and not client.keys(keys.tensor("*"))


def test_a_worker_with_two_models_never_mixes_them_in_a_batch(client, settings, served):
    """Jobs for Lite0 and Lite2 waiting together: one batch each, each answered by its own model."""
    worker = _worker(settings, served, client, LITE0, LITE2)
    for i, tensor in enumerate(_tensors(224)):
        _enqueue(client, tensor, f"a{i}", model=LITE0)
    for i, tensor in enumerate(_tensors(260)):
        _enqueue(client, tensor, f"b{i}", model=LITE2)
    batches = worker.consumer.next_batches(max_batch=8, wait_ms=20, block_ms=100)
    assert [b.stream for b in batches] == [keys.jobs(LITE0, "1"), keys.jobs(LITE2, "1")]  # oldest first
    assert all({d.job.model for d in b.deliveries} == {b.stream.split(":")[2]} for b in batches)
    for batch in batches:
        worker.process(batch)
    lite0 = [_reply(client, f"a{i}") for i in range(3)]
    lite2 = [_reply(client, f"b{i}") for i in range(3)]
    assert {(r.model_name, r.batch_size) for r in lite0} == {(LITE0, 3)}
    assert {(r.model_name, r.batch_size) for r in lite2} == {(LITE2, 3)}
    assert lite0[2].top[0][0] == 657 and lite2[2].top[0][0] == 540  # the rocket: each model's own answer
    assert _pending(client, LITE0) == _pending(client, LITE2) == 0


def test_a_tensor_of_the_wrong_size_is_answered_as_an_error(client, settings, served):
    worker = _worker(settings, served, client, LITE0, LITE2)
    _enqueue(client, _tensors(224)[0], "small", model=LITE2)
    (batch,) = worker.consumer.next_batches(8, 0, 100)
    worker.process(batch)
    result = _reply(client, "small")
    assert result.error and "260x260x3" in result.error and result.top == []
    assert _pending(client, LITE2) == 0


def _consumer(client: redis.Redis, name: str, claim_idle_ms: int, *models: str) -> JobConsumer:
    consumer = JobConsumer(client, name, [keys.jobs(m, "1") for m in models or (LITE0,)], claim_idle_ms, 10)
    consumer.ensure_groups()
    return consumer


def _sizes(batches: list) -> list[int]:
    return [len(b.deliveries) for b in batches]


def test_batches_are_capped_at_max_batch(client, settings):
    consumer = _consumer(client, "w-cap", settings.claim_idle_ms, LITE0, LITE2)
    for i in range(5):
        _enqueue(client, b"", f"c{i}")
    for i in range(4):
        _enqueue(client, b"", f"d{i}", model=LITE2)
    assert _sizes(consumer.next_batches(max_batch=2, wait_ms=0, block_ms=100)) == [2, 2]
    assert _sizes(consumer.next_batches(max_batch=8, wait_ms=50, block_ms=100)) == [3, 2]


def test_jobs_past_their_deadline_are_skipped_without_inference(client, settings, served):
    worker = _worker(settings, served, client)
    _enqueue(client, _tensors()[0], "late", deadline_ms=now_ms() - 1)
    (batch,) = worker.consumer.next_batches(8, 0, 100)
    worker.process(batch)
    assert _reply(client, "late") is None
    assert worker.stats.expired_total == 1 and worker.stats.batches_total == 0
    assert _pending(client) == 0 and not client.exists(keys.tensor("late"))


def test_a_job_whose_tensor_is_gone_is_dropped_and_the_rest_of_its_batch_answered(client, settings, served):
    worker = _worker(settings, served, client)
    for i, tensor in enumerate(_tensors()[:2]):
        _enqueue(client, tensor, f"t{i}")
    client.delete(keys.tensor("t0"))  # as if it had expired
    (batch,) = worker.consumer.next_batches(8, 0, 100)
    assert [d.job is None for d in batch.deliveries] == [True, False]
    worker.process(batch)
    assert _reply(client, "t0") is None and _reply(client, "t1").batch_size == 1
    assert _pending(client) == 0 and client.xlen(keys.jobs(LITE0, "1")) == 0


def test_malformed_entries_are_dropped_not_retried_forever(client, settings, served):
    worker = _worker(settings, served, client)
    client.xadd(keys.jobs(LITE0, "1"), {"v": "1", "job_id": "bad"})
    client.xadd(keys.jobs(LITE0, "1"), {"v": "3", "job_id": b"\xff\xfe"})  # not text: no tensor key either
    (batch,) = worker.consumer.next_batches(8, 0, 100)
    assert [d.job for d in batch.deliveries] == [None, None]
    worker.process(batch)
    assert client.xlen(keys.jobs(LITE0, "1")) == 0 and _pending(client) == 0


def test_a_job_whose_tensor_is_gone_past_its_deadline_counts_as_expired(client, settings, served):
    """A claim after the deadline and the margin finds the tensor expired: skipped, not malformed."""
    worker = _worker(settings, served, client)
    _enqueue(client, _tensors()[0], "long-gone", deadline_ms=now_ms() - 1)
    client.delete(keys.tensor("long-gone"))
    (batch,) = worker.consumer.next_batches(8, 0, 100)
    worker.process(batch)
    assert worker.stats.expired_total == 1 and _reply(client, "long-gone") is None and _pending(client) == 0


def test_jobs_of_a_dead_consumer_are_reclaimed_with_their_delivery_count(client, served):
    # long enough that "too early" holds on a busy machine
    settings = WorkerSettings.from_env({"CLAIM_IDLE_MS": "1500"})
    dead = _consumer(client, "dead", settings.claim_idle_ms)
    for i, tensor in enumerate(_tensors()):
        _enqueue(client, tensor, f"o{i}")
    assert _sizes(dead.next_batches(8, 0, 100)) == [3]  # taken, never answered: the consumer "dies"
    survivor = _worker(settings, served, client)
    taken = time.monotonic()
    assert survivor.consumer.next_batches(8, 0, 50) == []  # nothing new, and too early to claim
    (claimed,) = wait_until(lambda: survivor.consumer.next_batches(8, 0, 50), timeout_s=10)
    assert time.monotonic() - taken >= settings.claim_idle_ms / 1000  # not before CLAIM_IDLE_MS
    assert sorted(d.job.job_id for d in claimed.deliveries) == ["o0", "o1", "o2"]
    assert all(d.deliveries == 2 for d in claimed.deliveries)
    survivor.process(claimed)
    assert all(_reply(client, f"o{i}").deliveries == 2 for i in range(3))
    assert survivor.stats.claimed_total == 3
    assert _pending(client) == 0


@pytest.mark.parametrize(("name", "size"), [(LITE0, 224), (LITE2, 260)])
def test_model_record_carries_the_label_table_and_input_size(served, name, size):
    record = served[name].record
    assert record.version == "1" and len(record.labels) == 1000 and record.input_size == size
    assert record.labels[967] == {"index": 967, "wnid": "n07920052", "name": "espresso", "synonyms": ["espresso"]}
    assert record.labels[840]["synonyms"] == ["swab", "swob", "mop"]  # searchable by any name
    assert record.embedding_size == 1280 and record.published_top1 in (0.751, 0.776)


@pytest.mark.parametrize("model", [LITE0, LITE2])
def test_an_idle_worker_answers_a_lone_job_without_waiting_for_company(client, settings, model):
    """A job that arrives while a two-model worker is blocked idle is not held for the batch window."""
    consumer = _consumer(client, "w-idle", settings.claim_idle_ms, LITE0, LITE2)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(consumer.next_batches, max_batch=8, wait_ms=3000, block_ms=2000)
        assert wait_until(lambda: _blocked_reading(client), timeout_s=10)  # idle, blocked on both empty streams
        enqueued = time.monotonic()
        _enqueue(client, b"", "lone", model=model)
        batches = pending.result(timeout=10)
    assert [(b.stream, [d.job.job_id for d in b.deliveries]) for b in batches] == [(keys.jobs(model, "1"), ["lone"])]
    assert time.monotonic() - enqueued < 1.5  # the 3 s batch window was not spent


class _BrokenBackend:
    """Stands in for a model that fails on its input: only the failure path is under test."""

    name = "broken"

    def run(self, batch, wide=None):
        raise RuntimeError("simulated inference failure")


def test_an_inference_failure_answers_every_job_and_keeps_the_worker_alive(client, settings, served):
    broken = ServedModel(_BrokenBackend(), served[LITE0].record)
    worker = Worker(settings, [broken], client)
    worker.consumer.ensure_groups()
    for i, tensor in enumerate(_tensors()):
        _enqueue(client, tensor, f"f{i}")
    (batch,) = worker.consumer.next_batches(8, 0, 100)
    worker.process(batch)
    results = [_reply(client, f"f{i}") for i in range(3)]
    assert all(r is not None and r.error and "simulated" in r.error and r.top == [] for r in results)
    assert worker.stats.failed_total == 3
    assert _pending(client) == 0  # acked, not redelivered forever


class _Recording:
    """The real backend, each call held ``hold_s`` and recorded (start, end, wide): long enough
    for a second lane to start while the first infers."""

    def __init__(self, backend, hold_s: float) -> None:
        self.name = backend.name
        self._backend = backend
        self.hold_s = hold_s
        self.calls: list[tuple[float, float, bool | None]] = []

    def run(self, batch, wide=None):
        started = time.monotonic()
        time.sleep(self.hold_s)
        outputs = self._backend.run(batch, wide)
        self.calls.append((started, time.monotonic(), wide))
        return outputs


def _serve(
    client, served, lanes: int, jobs: int, max_batch: int, expired_first: bool = False
) -> tuple[_Recording, list[Result]]:
    """``jobs`` jobs waiting before the worker starts (the first past its deadline if asked, and
    then not answered); every call held 0.3 s and recorded."""
    worker, recording = _lanes_worker(client, served, max_batch, hold_s=0.3, lanes=lanes)
    tensors = _tensors()
    if expired_first:
        _enqueue(client, tensors[0], "expired", deadline_ms=now_ms() - 1)
    ids = [f"lane{i}" for i in range(jobs)]
    for i, job_id in enumerate(ids):
        _enqueue(client, tensors[i % len(tensors)], job_id)
    _run_until_answered(worker, client, ids)
    return recording, [_reply(client, job_id) for job_id in ids]


def _lanes_worker(client, served, max_batch: int, hold_s: float, lanes: int = 2) -> tuple[Worker, _Recording]:
    """A Lite0 worker with ``lanes`` lanes whose every backend call is held ``hold_s`` and recorded."""
    settings = WorkerSettings.from_env(
        {"MAX_BATCH": str(max_batch), "BATCH_WAIT_MS": "0", "PARALLEL_BATCHES": str(lanes)}
    )
    recording = _Recording(served[LITE0].backend, hold_s=hold_s)
    worker = Worker(settings, [ServedModel(recording, served[LITE0].record)], client, block_ms=50)
    worker.prepare()
    return worker, recording


def _run_until_answered(worker: Worker, client, ids: list[str]) -> None:
    loop = threading.Thread(target=worker.run, daemon=True)
    loop.start()
    try:
        assert wait_until(lambda: client.exists(*map(keys.reply, ids)) == len(ids), 10)
    finally:
        worker.stopping.set()
        loop.join(5)
    assert not loop.is_alive()  # every lane left once asked to stop


def test_a_helper_lane_infers_a_full_waiting_batch_beside_the_first_and_only_a_lone_image_alone_takes_every_thread(
    client, served
):
    recording, results = _serve(client, served, lanes=2, jobs=2, max_batch=1)
    (_, first_end, first_wide), (second_start, _, second_wide) = sorted(recording.calls)
    assert second_start < first_end  # the second lane started while the first inferred
    assert (first_wide, second_wide) == (True, False)  # the second ran beside it on the batch threads
    labels = served[LITE0].record.labels
    for photo, result in zip(golden.PHOTOS[:2], results, strict=True):
        assert result.error is None and photo.failure([(labels[i]["name"], p) for i, p in result.top]) is None
    assert _pending(client) == 0


def test_a_read_that_filled_a_batch_with_an_expired_job_still_sends_the_helper_looking(client, served):
    """Batches of two: the first read takes the expired job and one live one (one inference of
    one image), and the two jobs behind them are the helper's, beside it."""
    recording, results = _serve(client, served, lanes=2, jobs=3, max_batch=2, expired_first=True)
    (_, first_end, _), (second_start, _, _) = sorted(recording.calls)
    assert second_start < first_end
    assert [r.batch_size for r in results] == [1, 2, 2] and all(r.error is None for r in results)
    assert _reply(client, "expired") is None


def test_a_helper_lane_leaves_less_than_a_full_batch_to_the_first_lane(client, served):
    """Three jobs, batches of two: the first lane takes two, and the one left waiting is its next
    batch, not the helper's (the core stays with the API's decoders)."""
    recording, results = _serve(client, served, lanes=2, jobs=3, max_batch=2)
    (_, first_end, _), (second_start, _, second_wide) = sorted(recording.calls)
    assert second_start >= first_end and second_wide is True  # after the first, alone: on every thread
    assert [r.batch_size for r in results] == [2, 2, 1] and all(r.error is None for r in results)


def test_one_lane_infers_one_batch_at_a_time(client, served):
    recording, results = _serve(client, served, lanes=1, jobs=2, max_batch=1)
    (_, first_end, first_wide), (second_start, _, second_wide) = sorted(recording.calls)
    assert second_start >= first_end and first_wide is second_wide is True
    assert all(r.error is None for r in results)


def test_backed_up_names_the_streams_with_enough_jobs_no_consumer_has_taken(client, settings):
    consumer = _consumer(client, "w-backlog", settings.claim_idle_ms, LITE0, LITE2)
    lite0, lite2 = keys.jobs(LITE0, "1"), keys.jobs(LITE2, "1")
    assert consumer.backed_up(1) == []
    for i in range(3):
        _enqueue(client, b"", f"w{i}")
    _enqueue(client, b"", "w-lite2", model=LITE2)
    assert consumer.backed_up(1) == [lite0, lite2] and consumer.backed_up(2) == [lite0]
    (batch,) = consumer.take(2, [lite0])  # only the streams asked for
    assert len(batch.deliveries) == 2 and consumer.backed_up(1) == [lite0, lite2]  # taken ones are pending
    consumer.finish(batch, [])
    assert consumer.backed_up(2) == [] and consumer.backed_up(1) == [lite0, lite2]  # answered ones are deleted


def test_a_batch_in_a_lanes_hands_is_not_claimed_by_its_sibling_as_an_orphan(client):
    """Both lanes claim as one consumer: a batch held past CLAIM_IDLE_MS (a slow head fetch) stays
    with its lane, while the same consumer still claims what it no longer holds."""
    consumer = _consumer(client, "w-lanes", 100)
    for i in range(2):
        _enqueue(client, b"", f"h{i}")
    (held,) = consumer.next_batches(1, 0, None)
    (dropped,) = consumer.next_batches(1, 0, None)
    consumer._in_flight.discard(dropped.deliveries[0].entry_id)  # as if its lane had died mid-batch
    time.sleep(0.25)  # past CLAIM_IDLE_MS, and past the claim interval
    (claimed,) = consumer.claim_orphans(8)
    assert [d.entry_id for d in claimed.deliveries] == [dropped.deliveries[0].entry_id]
    consumer.finish(held, [])
    consumer.finish(claimed, [])
    assert _pending(client) == 0 and not consumer._in_flight


def _looking(worker: Worker) -> list[int]:
    """Every call a helper lane makes to look at the queue."""
    looks: list[int] = []
    backed_up = worker.consumer.backed_up
    worker.consumer.backed_up = lambda at_least: looks.append(at_least) or backed_up(at_least)
    return looks


def test_a_helper_lane_does_not_look_at_the_queue_beside_a_batch_short_of_max_batch(client, served):
    """At low load (batches under MAX_BATCH took every job waiting) a helper costs no round trip."""
    worker, _recording = _lanes_worker(client, served, max_batch=4, hold_s=0.3)
    looks = _looking(worker)
    ids = ["short0", "short1", "short2"]
    for job_id, tensor in zip(ids, _tensors(), strict=True):
        _enqueue(client, tensor, job_id)
    _run_until_answered(worker, client, ids)
    assert [_reply(client, job_id).batch_size for job_id in ids] == [3, 3, 3] and looks == []


def test_a_helper_lane_looks_once_per_full_batch_when_the_backlog_cannot_be_read(client, served):
    """Four entries stranded by a consumer that left the group with them pending count as waiting
    (XLEN - XPENDING) but no read returns them: the helper must not poll Redis in a loop."""
    stream = keys.jobs(LITE0, "1")
    gone = _consumer(client, "gone", 3000)
    for i in range(4):
        _enqueue(client, b"", f"s{i}")
    assert _sizes(gone.next_batches(8, 0, None)) == [4]
    client.xgroup_delconsumer(stream, keys.JOBS_GROUP, "gone")  # its pending entries are dropped
    worker, recording = _lanes_worker(client, served, max_batch=4, hold_s=0.5)
    looks = _looking(worker)
    real = [f"real{i}" for i in range(4)]
    for i, job_id in enumerate(real):
        _enqueue(client, _tensors()[i % 3], job_id)
    _run_until_answered(worker, client, real)
    assert len(recording.calls) == 1 and 1 <= len(looks) <= 2  # one full batch: one look (and one after it)
    assert all(_reply(client, job_id).error is None for job_id in real)


def test_the_litert_backend_answers_concurrent_batches_as_it_answers_them_one_by_one(served):
    """Two narrow interpreters and the wide one, called from four threads at once (one batch per
    interpreter at a time, or the outputs would mix)."""
    backend = served[LITE0].backend
    tensors = golden.tensors(224)
    batches = [np.stack(tensors), tensors[0][None]]
    expected = [backend.run(batch, wide=False).logits for batch in batches]
    calls = [(k % 2, k % 3 == 0) for k in range(24)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda call: backend.run(batches[call[0]], wide=call[1]).logits, calls))
    for (which, _wide), logits in zip(calls, outputs, strict=True):
        np.testing.assert_allclose(logits, expected[which], rtol=0, atol=1e-4)


def test_a_hung_lane_stops_the_heartbeat_vouching_for_the_worker(client, settings, served):
    worker = _worker(replace(settings, parallel_batches=2), served, client)
    assert worker.lanes == 2 and worker.loop_is_live()
    worker.last_loops[1] -= settings.request_timeout_s + settings.heartbeat_stale_s
    assert not worker.loop_is_live()


def test_a_helper_lane_that_fails_stops_the_worker_after_the_batch_in_hand(client, served):
    worker, _recording = _lanes_worker(client, served, max_batch=1, hold_s=0.3)

    def broken(at_least: int) -> list[str]:
        raise ValueError("simulated bug in a helper lane")

    worker.consumer.backed_up = broken
    _enqueue(client, _tensors()[0], "before-failure")
    loop = threading.Thread(target=worker.run, daemon=True)
    loop.start()
    loop.join(10)
    assert not loop.is_alive() and worker.lane_failed and worker.stopping.is_set()
    assert _reply(client, "before-failure").error is None  # the first lane finished its batch
    assert _pending(client) == 0

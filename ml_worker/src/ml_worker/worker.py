"""The inference worker: ``ml-worker`` (or ``python -m ml_worker.worker``).

Loads every model it serves once (each built model under ARTIFACTS_DIR, or
those named in MODELS), then loops: take the waiting jobs, one batch per model,
skip those whose deadline has passed, run one inference per batch, answer each
job and acknowledge. PARALLEL_BATCHES - 1 helper loops ("lanes", threads of
their own; the backends run one batch per lane at a time) take a batch too
while another infers, but only a full one still waiting: then the API has
decoded ahead and both cores infer. On SIGTERM/SIGINT it finishes the batches
in hand, answers, acknowledges and leaves the groups, so no job is orphaned.

Every inference yields the pooled embedding beside the logits: heads that read
the embedding (custom categories on a shared backbone) cost one small matrix
product per image, not a second backbone pass.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import redis

from imgclf_contract import keys, logs, redis_client
from imgclf_contract.heads import Head, load_head
from imgclf_contract.jobs import RESULT_TOP_K, Result, encode_vector, now_ms
from imgclf_contract.model_record import ModelRecord, parse_model_ref
from ml_worker import artifacts
from ml_worker.backends import Backend, Outputs, load_backend, softmax, top_k
from ml_worker.heartbeat import Heartbeat
from ml_worker.queue import Batch, Delivery, JobConsumer
from ml_worker.settings import WorkerSettings
from ml_worker.shutdown import stop_on_signals
from ml_worker.stats import WorkerStats

log = logging.getLogger("ml_worker.worker")
BLOCK_MS = 500  # how long one read waits before checking for shutdown
REDIS_RETRY_S = 0.5
DRAIN_PASSES = 4
MAX_CACHED_HEADS = 256


@dataclass(frozen=True)
class ServedModel:
    """One model version this worker answers: its backend (shared by the lanes), its published
    record and its stream."""

    backend: Backend
    record: ModelRecord

    @property
    def stream(self) -> str:
        return keys.jobs(self.record.name, self.record.version)

    @property
    def reference(self) -> dict[str, str]:
        """How the heartbeat and the logs name it."""
        return {"name": self.record.name, "version": self.record.version}


class HeadCache:
    """Custom heads by "name:version", fetched from Redis the first time a job names one.

    A published version never changes, so a cached head is never stale: a new version is
    simply a new key, which is how workers pick up new models without a restart.
    """

    def __init__(self, client: redis.Redis, limit: int = MAX_CACHED_HEADS) -> None:
        self.client = client
        self.limit = limit
        self._heads: dict[str, Head] = {}
        self._lock = threading.Lock()  # the lanes share it

    def get(self, ref: str) -> Head:
        with self._lock:
            head = self._heads.pop(ref, None)  # re-inserted below: the dict's order is least recently used first
        if head is None:
            name, version = parse_model_ref(ref)
            head = load_head(self.client, name, version)
            if head is None:
                raise LookupError(f"custom model {ref} has no published head")
        with self._lock:
            while len(self._heads) >= self.limit:
                self._heads.pop(next(iter(self._heads)))
            self._heads[ref] = head
        return head


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        models: list[ServedModel],
        client: redis.Redis,
        block_ms: int = BLOCK_MS,
        store: redis.Redis | None = None,
    ) -> None:
        """``client``: the queue Redis; ``store``: where custom heads are read (default: the same Redis)."""
        self.settings = settings
        self.block_ms = block_ms
        self.models = {m.stream: m for m in models}
        self.client = client
        self.worker_id = settings.resolved_worker_id
        self.consumer = JobConsumer(
            client, self.worker_id, list(self.models), settings.claim_idle_ms, settings.reply_ttl_s
        )
        self.heads = HeadCache(client if store is None else store)
        self.stats = WorkerStats()
        self.stopping = threading.Event()
        self.lanes = settings.parallel_batches
        self.last_loops = [time.monotonic()] * self.lanes  # the heartbeat stops vouching for a lane that hangs
        self._inferring = 0  # lanes inside an inference now
        self._full_reads = 0  # reads that filled a batch for some stream: jobs may still wait
        self._announced = 0  # the count of those the helpers were last woken for
        self._looked_at = [0] * self.lanes  # per helper lane: the count it last looked at
        self._batch_started = threading.Condition()
        self.lane_failed = False

    def _result(
        self, model: ServedModel, delivery: Delivery, batch_id: str, size: int, elapsed_s: float, **answer
    ) -> Result:
        name, _, version = delivery.job.head.partition(":")  # a custom model answers in its own name
        return Result(
            job_id=delivery.job.job_id,
            model_name=name or model.record.name,
            model_version=version or model.record.version,
            backend=model.backend.name,
            worker_id=self.worker_id,
            batch_id=batch_id,
            batch_size=size,
            inference_ms=round(elapsed_s * 1000, 3),
            deliveries=delivery.deliveries,
            **answer,
        )

    @contextmanager
    def _inferring_alone(self, size: int) -> Iterator[bool]:
        """True for a lone image while no other lane infers: it may take every inference thread."""
        with self._batch_started:
            wide = size == 1 and self._inferring == 0
            self._inferring += 1
            if self._full_reads != self._announced:  # jobs may still wait: the helpers look now
                self._announced = self._full_reads
                self._batch_started.notify_all()
        try:
            yield wide
        finally:
            with self._batch_started:
                self._inferring -= 1

    def _infer(self, model: ServedModel, live: list[Delivery]) -> list[Result]:
        """One inference for the batch; a failure is answered as an error, never a dead worker."""
        batch_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        try:
            batch = np.stack([d.job.array(model.record.input_size) for d in live])
            with self._inferring_alone(len(live)) as wide:
                outputs = model.backend.run(batch, wide)
            answers = [self._answer(d, outputs, i) for i, d in enumerate(live)]
        except Exception as exc:  # answer every job of the batch with the failure
            log.exception("inference failed", extra={"batch_id": batch_id, "model": model.record.name})
            self.stats.add(failed_total=len(live))
            return [self._result(model, d, batch_id, len(live), 0.0, error=f"inference failed: {exc}") for d in live]
        elapsed = time.perf_counter() - started
        self.stats.record_batch(len(live), elapsed)
        request_ids = [d.job.request_id for d in live]
        figures = {"batch_id": batch_id, "size": len(live), "inference_ms": round(elapsed * 1000, 2)}
        log.info("batch answered", extra={**figures, "model": model.record.name, "request_ids": request_ids})
        return [self._result(model, d, batch_id, len(live), elapsed, **a) for d, a in zip(live, answers, strict=True)]

    def _answer(self, delivery: Delivery, outputs: Outputs, row: int) -> dict:
        """Top classes of the base model, or of the job's custom head applied to the same embedding."""
        embedding = outputs.embedding[row : row + 1]
        if delivery.job.head:
            probabilities = self.heads.get(delivery.job.head).probabilities(embedding)[0]
        else:
            probabilities = softmax(outputs.logits[row])
        answer: dict = {"top": top_k(probabilities, RESULT_TOP_K)}
        if delivery.job.embed:
            answer["embedding"] = encode_vector(embedding[0])
        return answer

    def process(self, batch: Batch) -> None:
        """Infer one batch and answer every job in it (expired and malformed ones are only acked)."""
        at = now_ms()
        deliveries = batch.deliveries
        live = [d for d in deliveries if d.job is not None and not d.job.expired(at)]
        expired = sum(1 for d in deliveries if d.job is not None and d.job.expired(at))
        claimed = sum(1 for d in deliveries if d.deliveries > 1)
        results = self._infer(self.models[batch.stream], live) if live else []
        self.consumer.finish(batch, results)
        self.stats.add(expired_total=expired, claimed_total=claimed)
        if expired:
            log.info("skipped %d jobs past their deadline", expired)

    def prepare(self) -> None:
        """Join the consumer groups and publish the model records, waiting out a Redis outage.

        Done before the first heartbeat, so the API never admits a job for a model it cannot name.
        """
        while not self.stopping.is_set():
            try:
                self.consumer.ensure_groups()
                pipe = self.client.pipeline(transaction=False)
                for model in self.models.values():
                    record = model.record
                    pipe.set(keys.model(record.name, record.version), record.to_json())
                    pipe.sadd(keys.MODELS_SET, f"{record.name}:{record.version}")
                pipe.execute()
                return
            except redis.RedisError as exc:
                log.warning("redis unavailable, retrying: %s", exc)
                self.stopping.wait(REDIS_RETRY_S)

    def loop_is_live(self) -> bool:
        """False once one lane's loop iteration has taken longer than any job could wait for it."""
        limit_s = self.settings.request_timeout_s + self.settings.heartbeat_stale_s
        return time.monotonic() - min(self.last_loops) < limit_s

    def run(self) -> None:
        """Serve on every lane until asked to stop; returns once each has finished its batch in hand."""
        helpers = [
            threading.Thread(target=self._serve_helper, args=(lane,), name=f"lane-{lane}", daemon=True)
            for lane in range(1, self.lanes)
        ]
        for thread in helpers:
            thread.start()
        try:
            self._serve_lane(0, self._take_batches)
        finally:
            self.stopping.set()  # a first lane that failed stops the helpers too, after their batch in hand
            for thread in helpers:
                thread.join()

    def _serve_helper(self, lane: int) -> None:
        """A helper lane that fails for anything but Redis stops the whole worker (which then
        drains, leaves and exits 1) rather than leave it serving on fewer lanes unnoticed."""
        try:
            self._serve_lane(lane, self._help)
        except Exception:
            log.exception("helper lane %d failed; stopping the worker", lane)
            self.lane_failed = True
            self.stopping.set()

    def _serve_lane(self, lane: int, step: Callable[[int], None]) -> None:
        """One lane's loop: ``step`` until asked to stop; ride out Redis outages by reconnecting."""
        while not self.stopping.is_set():
            try:
                self.prepare()  # again after an outage: a Redis that lost its data needs group and record
                while not self.stopping.is_set():
                    self.last_loops[lane] = time.monotonic()
                    step(lane)
            except redis.RedisError as exc:
                log.warning("redis unavailable, retrying: %s", exc)
                self.stopping.wait(REDIS_RETRY_S)

    def _take_batches(self, _lane: int) -> None:
        """The first lane: wait for jobs, take a batch per model, answer them. A read that filled
        a batch (expired entries included) may have left jobs waiting; one that did not took
        every job then waiting, so the helpers need not look beside it."""
        s = self.settings
        batches = self.consumer.next_batches(s.max_batch, s.batch_wait_ms, self.block_ms)
        if any(len(batch.deliveries) >= s.max_batch for batch in batches):
            with self._batch_started:
                self._full_reads += 1
        for batch in batches:
            self.process(batch)

    def _help(self, lane: int) -> None:
        """A helper lane: while another lane infers, take a batch too if a full one is still
        waiting undelivered. A backlog that size means the API has decoded ahead of inference, so
        the second core has nothing better to do; anything less is the first lane's next batch,
        and inferring it now would take the core from the API's decoders (and from a client on
        the same machine) for no gain. The queue is looked at once per read of the first lane
        that filled a batch, while an inference runs (a read short of MAX_BATCH for every stream
        took every job then waiting, so at low load the helper costs nothing, not even a round
        trip), and again at once after a batch of its own."""

        def unseen_full_read() -> bool:
            return self._inferring > 0 and self._full_reads != self._looked_at[lane]

        with self._batch_started:
            if not self._batch_started.wait_for(unseen_full_read, self.block_ms / 1000):
                return
            self._looked_at[lane] = self._full_reads
        max_batch = self.settings.max_batch
        streams = self.consumer.backed_up(max_batch)  # only those: a lone job of another model is lane 0's
        batches = self.consumer.take(max_batch, streams) if streams else []
        for batch in batches:
            self.process(batch)
        if batches:
            self._looked_at[lane] = -1  # the backlog may still be there

    def drain_and_leave(self) -> None:
        """After the heartbeat is withdrawn: answer what arrived since the last read, then leave."""
        try:
            for _ in range(DRAIN_PASSES):  # bounded: other live workers keep the groups busy
                batches = self.consumer.next_batches(self.settings.max_batch, 0, None)
                if not batches:
                    break
                for batch in batches:
                    self.process(batch)
            self.consumer.leave()
        except redis.RedisError as exc:
            log.warning("could not drain before leaving: %s", exc)

    def heartbeat(self) -> Heartbeat:
        """This worker's heartbeat thread (not started): it vouches for the loop while the loop turns."""
        info = {"models": [m.reference for m in self.models.values()], "backend": self.settings.backend}
        s = self.settings
        return Heartbeat(
            self.client,
            self.worker_id,
            info,
            self.stats,
            interval_s=s.heartbeat_interval_s,
            stale_s=s.heartbeat_stale_s,
            stopping=self.stopping,
            loop_is_live=self.loop_is_live,
        )


def model_record(model: artifacts.ModelArtifacts) -> ModelRecord:
    """What the API needs to know about this version: facts and class names."""
    card = model.card
    return ModelRecord(
        name=model.name,
        version=model.version,
        input_size=model.input_size,
        preprocessing=card["preprocessing"],
        num_classes=card["num_classes"],
        labels=[asdict(lb) for lb in model.labels()],  # index, wnid, name, synonyms
        embedding_size=card.get("embedding_size", 0),
        precision=model.precision,
        published_top1=card.get("published_top1"),
        measured=card.get("measured"),
    )


def load(settings: WorkerSettings) -> list[ServedModel]:
    """Every model this worker serves, loaded and warmed up before it declares readiness."""
    served = []
    for model in artifacts.load_all(settings):
        backend = load_backend(
            settings.backend, model, settings.num_threads, settings.batch_num_threads, settings.parallel_batches
        )
        backend.run(np.zeros((1, model.input_size, model.input_size, 3), np.uint8))
        served.append(ServedModel(backend, model_record(model)))
    return served


def serve(settings: WorkerSettings, models: list[ServedModel], started: float) -> int:
    """Serve jobs until SIGTERM/SIGINT, then finish the batches in hand, answer what is left and leave."""
    client = redis_client.connect(
        settings, settings.queue_url, socket_timeout=BLOCK_MS / 1000 + 5, health_check_interval=10
    )
    store = None  # custom heads live in the store: a second connection only where it is another Redis
    if settings.redis_url != settings.queue_url:
        store = redis_client.connect(settings, settings.redis_url, socket_timeout=5, health_check_interval=10)
    worker = Worker(settings, models, client, store=store)
    heartbeat = worker.heartbeat()

    stop_on_signals(worker.stopping, "finishing the batch in hand")
    worker.prepare()
    heartbeat.start()
    startup_s = round(time.monotonic() - started, 3)
    log.info(
        "worker ready",
        extra={
            "worker_id": worker.worker_id,
            "backend": settings.backend,
            "models": [m.reference for m in models],
            "startup_s": startup_s,
        },
    )
    worker.run()
    heartbeat.join(timeout=settings.heartbeat_interval_s * 2)  # withdrawn: no new jobs are admitted for us
    worker.drain_and_leave()
    log.info("worker stopped", extra={"worker_id": worker.worker_id})
    return 1 if worker.lane_failed else 0


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    settings = WorkerSettings.from_env()
    logs.configure(settings.log_level)
    return serve(settings, load(settings), started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

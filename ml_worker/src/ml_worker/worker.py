"""The inference worker: ``ml-worker`` (or ``python -m ml_worker.worker``).

Loads the model once, then loops: take a batch of jobs from the stream, skip
those whose deadline has passed, run one inference for the rest, answer each
job and acknowledge. On SIGTERM/SIGINT it finishes the batch in hand, answers,
acknowledges and leaves the group, so no job is orphaned.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict

import numpy as np
import redis

from imgclf_contract import keys, logs, redis_client
from imgclf_contract.jobs import RESULT_TOP_K, Result, now_ms
from imgclf_contract.model_record import ModelRecord
from imgclf_contract.preprocess import INPUT_SIZE
from ml_worker import artifacts
from ml_worker.backends import Backend, load_backend, softmax, top_k
from ml_worker.heartbeat import Heartbeat
from ml_worker.queue import Delivery, JobConsumer
from ml_worker.settings import WorkerSettings
from ml_worker.stats import WorkerStats

log = logging.getLogger("ml_worker.worker")
BLOCK_MS = 500  # how long one read waits before checking for shutdown
REDIS_RETRY_S = 0.5
DRAIN_PASSES = 4


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        backend: Backend,
        record: ModelRecord,
        client: redis.Redis,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self.settings = settings
        self.block_ms = block_ms
        self.backend = backend
        self.record = record
        self.client = client
        self.worker_id = settings.resolved_worker_id
        self.consumer = JobConsumer(client, self.worker_id, settings.claim_idle_ms, settings.reply_ttl_s)
        self.stats = WorkerStats()
        self.stopping = threading.Event()
        self.last_loop = time.monotonic()  # the heartbeat stops vouching for a loop that hangs

    def _result(self, delivery: Delivery, batch_id: str, size: int, elapsed_s: float, **answer) -> Result:
        return Result(
            job_id=delivery.job.job_id,
            model_name=self.record.name,
            model_version=self.record.version,
            backend=self.backend.name,
            worker_id=self.worker_id,
            batch_id=batch_id,
            batch_size=size,
            inference_ms=round(elapsed_s * 1000, 3),
            deliveries=delivery.deliveries,
            **answer,
        )

    def _infer(self, live: list[Delivery]) -> list[Result]:
        """One inference for the batch; a failure is answered as an error, never a dead worker."""
        batch_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        try:
            probabilities = softmax(self.backend.predict(np.stack([d.job.array() for d in live])))
        except Exception as exc:  # answer every job of the batch with the failure
            log.exception("inference failed", extra={"batch_id": batch_id})
            self.stats.add(failed_total=len(live))
            return [self._result(d, batch_id, len(live), 0.0, error=f"inference failed: {exc}") for d in live]
        elapsed = time.perf_counter() - started
        self.stats.record_batch(len(live), elapsed)
        request_ids = [d.job.request_id for d in live]
        figures = {"batch_id": batch_id, "size": len(live), "inference_ms": round(elapsed * 1000, 2)}
        log.info("batch answered", extra={**figures, "request_ids": request_ids})
        return [
            self._result(d, batch_id, len(live), elapsed, top=top_k(p, RESULT_TOP_K))
            for d, p in zip(live, probabilities, strict=True)
        ]

    def process(self, deliveries: list[Delivery]) -> None:
        """Infer one batch and answer every job in it (expired and malformed ones are only acked)."""
        at = now_ms()
        live = [d for d in deliveries if d.job is not None and not d.job.expired(at)]
        expired = sum(1 for d in deliveries if d.job is not None and d.job.expired(at))
        claimed = sum(1 for d in deliveries if d.deliveries > 1)
        results = self._infer(live) if live else []
        self.consumer.finish([d.entry_id for d in deliveries], results)
        self.stats.add(expired_total=expired, claimed_total=claimed)
        if expired:
            log.info("skipped %d jobs past their deadline", expired)

    def prepare(self) -> None:
        """Join the consumer group and publish the model record, waiting out a Redis outage.

        Done before the first heartbeat, so the API never admits a job for a model it cannot name.
        """
        while not self.stopping.is_set():
            try:
                self.consumer.ensure_group()
                self.client.set(keys.model(self.record.name, self.record.version), self.record.to_json())
                return
            except redis.RedisError as exc:
                log.warning("redis unavailable, retrying: %s", exc)
                self.stopping.wait(REDIS_RETRY_S)

    def loop_is_live(self) -> bool:
        """False once one loop iteration has taken longer than any job could wait for it."""
        limit_s = self.settings.request_timeout_s + self.settings.heartbeat_stale_s
        return time.monotonic() - self.last_loop < limit_s

    def run(self) -> None:
        """Serve until asked to stop; ride out Redis outages by reconnecting."""
        s = self.settings
        while not self.stopping.is_set():
            try:
                self.prepare()  # again after an outage: a Redis that lost its data needs group and record
                while not self.stopping.is_set():
                    self.last_loop = time.monotonic()
                    deliveries = self.consumer.next_batch(s.max_batch, s.batch_wait_ms, self.block_ms)
                    if deliveries:
                        self.process(deliveries)
            except redis.RedisError as exc:
                log.warning("redis unavailable, retrying: %s", exc)
                self.stopping.wait(REDIS_RETRY_S)

    def drain_and_leave(self) -> None:
        """After the heartbeat is withdrawn: answer what arrived since the last read, then leave."""
        try:
            for _ in range(DRAIN_PASSES):  # bounded: other live workers keep the group busy
                deliveries = self.consumer.next_batch(self.settings.max_batch, 0, None)
                if not deliveries:
                    break
                self.process(deliveries)
            self.consumer.leave()
        except redis.RedisError as exc:
            log.warning("could not drain before leaving: %s", exc)

    def heartbeat(self) -> Heartbeat:
        """This worker's heartbeat thread (not started): it vouches for the loop while the loop turns."""
        info = {"model_name": self.record.name, "model_version": self.record.version, "backend": self.backend.name}
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
    return ModelRecord(
        name=model.name,
        version=model.version,
        input_size=INPUT_SIZE,
        preprocessing=model.card["preprocessing"],
        num_classes=model.card["num_classes"],
        labels=[asdict(lb) for lb in model.labels()],  # index, wnid, name, synonyms
    )


def load(settings: WorkerSettings) -> tuple[artifacts.ModelArtifacts, Backend]:
    """The model files and a warmed-up backend (warm before declaring readiness)."""
    model = artifacts.load(settings)
    backend = load_backend(settings.backend, model, settings.num_threads, settings.batch_num_threads)
    backend.predict(np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.uint8))
    return model, backend


def serve(settings: WorkerSettings, model: artifacts.ModelArtifacts, backend: Backend, started: float) -> int:
    """Serve jobs until SIGTERM/SIGINT, then finish the batch in hand, answer what is left and leave."""
    client = redis_client.connect(
        settings, settings.queue_url, socket_timeout=BLOCK_MS / 1000 + 5, health_check_interval=10
    )
    worker = Worker(settings, backend, model_record(model), client)
    heartbeat = worker.heartbeat()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, finishing the batch in hand", signal.Signals(signum).name)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker.prepare()
    heartbeat.start()
    startup_s = round(time.monotonic() - started, 3)
    log.info(
        "worker ready",
        extra={
            "worker_id": worker.worker_id,
            "backend": backend.name,
            "model_version": model.version,
            "startup_s": startup_s,
        },
    )
    worker.run()
    heartbeat.join(timeout=settings.heartbeat_interval_s * 2)  # withdrawn: no new jobs are admitted for us
    worker.drain_and_leave()
    log.info("worker stopped", extra={"worker_id": worker.worker_id})
    return 0


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    settings = WorkerSettings.from_env()
    logs.configure(settings.log_level)
    model, backend = load(settings)
    return serve(settings, model, backend, started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

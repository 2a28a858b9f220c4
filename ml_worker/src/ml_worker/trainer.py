"""The trainer process: ``python -m ml_worker.trainer``, started by ``make up`` and compose.

Takes training ids from ``keys.TRAINING_QUEUE`` one at a time, at low CPU
priority (``TRAINER_NICE``), and for each: reads the dataset's embeddings from
Redis, fits a head (``ml_worker.training``) while stamping progress and a
heartbeat into the training's hash, then publishes version N of the model in
one Redis transaction (head weights, model record, catalogue entry, training
state, export request), which every worker on any host reads on its next job
for it. Exports (``python -m ml_worker.export``, some 20 s of conversion) run in
a child process, one at a time, from ``keys.EXPORT_QUEUE``, so they never delay a training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import redis

from imgclf_contract import keys, logs, redis_client
from imgclf_contract.heads import Head
from imgclf_contract.liveness import redis_now_ms
from imgclf_contract.model_record import ModelRecord
from imgclf_contract.training import HEARTBEAT_S, Status, trainability_problem
from ml_worker import training
from ml_worker.settings import TrainerSettings
from ml_worker.shutdown import stop_on_signals

log = logging.getLogger("ml_worker.trainer")
POLL_S = 1


class TrainingFailed(Exception):
    """A training that cannot go on; the message is shown to the user."""


class Heartbeat(threading.Thread):
    """Stamps the running training's ``heartbeat_ms`` so readers can tell a dead trainer."""

    def __init__(self, client: redis.Redis, training_id: str) -> None:
        super().__init__(name="training-heartbeat", daemon=True)
        self.client, self.key, self.done = client, keys.training(training_id), threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            try:
                self.client.hset(self.key, "heartbeat_ms", redis_now_ms(self.client))
            except redis.RedisError as exc:
                log.warning("training heartbeat failed: %s", exc)

    def stop(self) -> None:
        self.done.set()
        self.join()


class Trainer:
    def __init__(self, settings: TrainerSettings, client: redis.Redis, queue: redis.Redis) -> None:
        """``client``: the store (datasets, trainings, heads, custom records); ``queue``: base model records."""
        self.settings = settings
        self.client = client
        self.queue = queue
        self.stopping = threading.Event()
        self.exporting: subprocess.Popen | None = None

    def _update(self, training_id: str, **fields: object) -> None:
        self.client.hset(keys.training(training_id), mapping={k: str(v) for k, v in fields.items()})

    def _dataset(self, name: str) -> tuple[dict, training.Examples]:
        """The dataset's facts and its examples; TrainingFailed when it cannot be trained any more."""
        meta = {k.decode(): v.decode() for k, v in self.client.hgetall(keys.dataset(name)).items()}
        if not meta:
            raise TrainingFailed(f"Dataset {name} no longer exists.")
        labels = self.client.hgetall(keys.dataset_labels(name))
        embeddings = self.client.hgetall(keys.dataset_embeddings(name))
        rows = {sha.decode(): (label.decode(), embeddings[sha]) for sha, label in labels.items() if sha in embeddings}
        counts: dict[str, int] = {}
        for label, _ in rows.values():
            counts[label] = counts.get(label, 0) + 1
        if problem := trainability_problem(counts):
            raise TrainingFailed(problem)
        meta["pairs"] = sorted((sha, label) for sha, (label, _) in rows.items())  # what the fingerprint covers
        return meta, training.examples(rows)

    def run_one(self, training_id: str) -> None:
        state = {k.decode(): v.decode() for k, v in self.client.hgetall(keys.training(training_id)).items()}
        if state.get("status") != Status.QUEUED:
            return
        self._update(
            training_id,
            status=Status.RUNNING.value,
            phase="loading",
            started_ms=redis_now_ms(self.client),
            heartbeat_ms=redis_now_ms(self.client),
            max_epochs=training.MAX_EPOCHS,
        )
        heartbeat = Heartbeat(self.client, training_id)
        heartbeat.start()
        started = time.monotonic()
        try:
            record, head = self._train(training_id, state)
        except Exception as exc:
            heartbeat.stop()
            log.exception("training failed", extra={"training_id": training_id})
            self._finish_failed(
                training_id, state["model"], str(exc) if isinstance(exc, TrainingFailed) else f"training failed: {exc}"
            )
            return
        heartbeat.stop()
        self._publish(training_id, state["model"], record, head, time.monotonic() - started)

    def _train(self, training_id: str, state: dict) -> tuple[ModelRecord, Head]:
        meta, data = self._dataset(state["dataset"])
        base = self.queue.get(keys.model(meta["base"], meta["base_version"]))
        if base is None:
            raise TrainingFailed(f"Base model {meta['base']}:{meta['base_version']} is not published by any worker.")
        base_record = ModelRecord.from_json(base)
        self._update(training_id, phase="training", epoch=0)
        best = [0.0]

        def on_epoch(epoch: int, accuracy: float) -> None:
            best[0] = max(best[0], accuracy)
            self._update(training_id, epoch=epoch, holdout_accuracy=round(best[0], 4))

        fit_started = time.monotonic()
        head, report = training.fit(data, float(state["holdout"]), on_epoch)
        report["seconds"] = round(time.monotonic() - fit_started, 2)
        fingerprint = hashlib.sha256(json.dumps(meta["pairs"]).encode()).hexdigest()
        record = ModelRecord(
            name=state["model"],
            version="",
            input_size=base_record.input_size,
            preprocessing=base_record.preprocessing,
            num_classes=len(data.labels),
            labels=[{"index": i, "wnid": None, "name": label} for i, label in enumerate(data.labels)],
            embedding_size=base_record.embedding_size,
            precision=base_record.precision,
            measured={
                "dataset": f"hold-out of {state['dataset']}",
                "images": report["holdout_images"],
                "top1": report["top1"],
                "top5": report["top5"],
                "seconds": report["seconds"],
            },
            base=base_record.name,
            base_version=base_record.version,
            report=report,
            dataset_fingerprint=fingerprint,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        return record, head

    def _publish(self, training_id: str, name: str, record: ModelRecord, head: Head, seconds: float) -> None:
        """Version N+1 of ``name``: head, record, catalogue entry and the training's success in one transaction.

        WATCH on the training: if a reader failed it meanwhile (our heartbeat went stale), nothing is published.
        """
        self._update(training_id, phase="publishing")
        key = keys.training(training_id)
        with self.client.pipeline() as pipe:
            try:
                pipe.watch(key, keys.MODELS_SET)
                if pipe.hget(key, "status") != Status.RUNNING.value.encode():
                    return
                versions = [
                    m.decode().partition(":")[2]
                    for m in pipe.smembers(keys.MODELS_SET)
                    if m.decode().partition(":")[0] == name
                ]
                version = str(max((int(v) for v in versions if v.isdigit()), default=0) + 1)
                published = dataclasses.replace(record, version=version)
                pipe.multi()
                pipe.hset(keys.head(name, version), mapping=head.to_fields())
                pipe.set(keys.model(name, version), published.to_json())
                pipe.sadd(keys.MODELS_SET, f"{name}:{version}")
                pipe.delete(keys.head_pin(name))  # the newest successful version answers the name again
                done = {
                    "status": Status.SUCCEEDED.value,
                    "phase": "done",
                    "version": version,
                    "report": json.dumps(record.report),
                    "finished_ms": int(time.time() * 1000),
                }
                pipe.hset(key, mapping=done)
                if published.exportable:
                    pipe.lpush(keys.EXPORT_QUEUE, f"{name}:{version}")
                pipe.execute()
            except redis.WatchError:
                log.warning("training %s changed while publishing; not published", training_id)
                return
        self._release(training_id, name)
        log.info(
            "published",
            extra={"model": name, "version": version, "seconds": round(seconds, 2), "top1": record.report["top1"]},
        )

    def start_export(self) -> None:
        """Start the next queued export in a child process unless one is running (same niceness)."""
        if self.exporting is not None and self.exporting.poll() is None:
            return
        ref = self.client.rpop(keys.EXPORT_QUEUE)
        if ref is not None:
            self.exporting = subprocess.Popen([sys.executable, "-m", "ml_worker.export", ref.decode()])

    def queue_missing_exports(self) -> None:
        """At start: exports a trainer that died never built (custom versions without one) are queued again."""
        refs = sorted(m.decode() for m in self.client.smembers(keys.MODELS_SET))
        for ref in refs:
            name, _, version = ref.partition(":")
            raw = self.client.get(keys.model(name, version))
            if raw and ModelRecord.from_json(raw).exportable and not self.client.exists(keys.export(name, version)):
                self.client.lpush(keys.EXPORT_QUEUE, ref)

    def _release(self, training_id: str, name: str) -> None:
        lock = keys.training_lock(name)
        if self.client.get(lock) == training_id.encode():
            self.client.delete(lock)

    def _finish_failed(self, training_id: str, name: str, message: str) -> None:
        self._update(
            training_id, status=Status.FAILED.value, phase="failed", error=message, finished_ms=int(time.time() * 1000)
        )
        self._release(training_id, name)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.start_export()
                popped = self.client.brpop([keys.TRAINING_QUEUE], timeout=POLL_S)
                if popped:
                    self.run_one(popped[1].decode())
            except redis.RedisError as exc:
                log.warning("redis unavailable, retrying: %s", exc)
                self.stopping.wait(POLL_S)


def main() -> int:
    settings = TrainerSettings.from_env()
    logs.configure(settings.log_level)
    os.nice(settings.trainer_nice)
    import keras  # noqa: F401  (TensorFlow's 3-6 s import happens before "ready", not in the first training)

    client = redis_client.connect(settings, socket_timeout=POLL_S + 5, health_check_interval=10)
    queue = client
    if settings.queue_url != settings.redis_url:
        queue = redis_client.connect(settings, settings.queue_url, socket_timeout=5, health_check_interval=10)
    trainer = Trainer(settings, client, queue)

    stop_on_signals(trainer.stopping, "stopping after the training in hand")
    trainer.queue_missing_exports()
    log.info("trainer ready", extra={"nice": os.nice(0)})
    trainer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

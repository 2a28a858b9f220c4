"""Everything the API keeps in Redis besides the job stream: predictions and
feedback (the store), the result cache (the cache), worker liveness and published
model records (the queue). The three roles may be one Redis or three (keys.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis
from flask import current_app

from ml_worker.contract import keys
from ml_worker.contract.config import Settings
from ml_worker.contract.heartbeat import live_workers
from ml_worker.contract.model_record import ModelRecord, version_key

LIVE_WORKERS_TTL_S = 0.5  # how long one process reuses its view of the live workers


@dataclass
class _Cached:
    value: list[dict]
    at: float


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        clients: dict[str, redis.Redis] = {}
        for url in (settings.redis_url, settings.queue_url, settings.cache_url):
            clients.setdefault(url, _connect(url, settings))
        self.client = clients[settings.redis_url]  # the store
        self.queue = clients[settings.queue_url]
        self.cache = clients[settings.cache_url]
        self.clients = list(clients.values())  # each distinct Redis once
        self._workers = _Cached([], 0.0)
        self._models: dict[tuple[str, str], ModelRecord] = {}

    # -- workers and models ------------------------------------------------
    def live_workers(self, fresh: bool = False) -> list[dict]:
        now = time.monotonic()
        if fresh or now - self._workers.at > LIVE_WORKERS_TTL_S:
            self._workers = _Cached(live_workers(self.queue, self.settings.heartbeat_stale_s), now)
        return self._workers.value

    def model_record(self, name: str, version: str) -> ModelRecord | None:
        record = self._models.get((name, version))
        if record is None:
            raw = self.queue.get(keys.model(name, version))
            if raw is None:
                return None
            record = self._models[(name, version)] = ModelRecord.from_json(raw)
        return record

    def current_model(self) -> tuple[ModelRecord, str, int] | None:
        """The model the live workers serve (newest version wins), its backend, and how many serve it."""
        workers = self.live_workers()
        if not workers:
            return None
        newest = max(workers, key=lambda w: version_key(w["model_version"]))
        record = self.model_record(newest["model_name"], newest["model_version"])
        if record is None:
            return None
        serving = sum(1 for w in workers if w["model_version"] == record.version)
        return record, newest["backend"], serving

    # -- result cache ------------------------------------------------------
    def cached_top(self, sha256: str) -> tuple[str, str, list] | None:
        """(model name, version, top list) cached for any version a live worker serves."""
        if not self.settings.cache_enabled:
            return None
        versions = {(w["model_name"], w["model_version"]) for w in self.live_workers()}
        for name, version in sorted(versions, key=lambda nv: version_key(nv[1]), reverse=True):
            raw = self.cache.get(keys.cache(name, version, sha256))
            if raw is not None:
                return name, version, json.loads(raw)
        return None

    # -- predictions and feedback -----------------------------------------
    def save_prediction(self, prediction_id: str, record: dict, top: list, image: bytes | None) -> None:
        """Remember a prediction for feedback, cache its answer, keep the image if configured."""
        s = self.settings
        pipe = self.client.pipeline(transaction=False)
        pipe.set(keys.prediction(prediction_id), json.dumps(record), ex=s.prediction_ttl_s)
        if image is not None:
            # NX: an image already kept for good (feedback named it) must not get a TTL back.
            pipe.set(keys.image(record["sha256"]), image, ex=s.prediction_ttl_s, nx=True)
        pipe.execute()
        if s.cache_enabled and top:
            cache_key = keys.cache(record["model_name"], record["model_version"], record["sha256"])
            self.cache.set(cache_key, json.dumps(top), ex=s.cache_ttl_s)

    def prediction(self, prediction_id: str) -> dict | None:
        raw = self.client.get(keys.prediction(prediction_id))
        return json.loads(raw) if raw else None

    def save_feedback(self, record: dict) -> None:
        """Stored without TTL and indexed, so it survives for export (Redis AOF makes it durable)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(keys.feedback(record["id"]), json.dumps(record))
        pipe.rpush(keys.FEEDBACK_INDEX, record["id"])
        if record.get("image_key"):
            pipe.persist(record["image_key"])
        pipe.execute()

    def feedback(self, feedback_id: str) -> dict | None:
        raw = self.client.get(keys.feedback(feedback_id))
        return json.loads(raw) if raw else None

    def queue_depth(self) -> tuple[int, int]:
        """(entries in the stream, of which delivered but not yet answered)."""
        pipe = self.queue.pipeline(transaction=False)
        pipe.xlen(keys.JOBS_STREAM)
        pipe.xpending(keys.JOBS_STREAM, keys.JOBS_GROUP)
        try:
            length, pending = pipe.execute()
        except redis.ResponseError:  # no group yet: no worker ever started
            return 0, 0
        return int(length), int(pending["pending"])


def _connect(url: str, settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        password=settings.redis_password or None,
        socket_connect_timeout=1.0,
        socket_timeout=settings.request_timeout_s + 2,
        health_check_interval=5,
        retry_on_timeout=False,
    )


def get_store() -> Store:
    return current_app.extensions["store"]

"""Everything the API keeps in Redis besides the job streams: predictions,
feedback, the result cache, worker liveness and (through the catalogue) published model records."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis
from flask import current_app

from api.catalogue import ModelCatalogue
from ml_worker.contract import keys
from ml_worker.contract.config import Settings
from ml_worker.contract.heartbeat import live_workers
from ml_worker.contract.model_record import ModelRecord

LIVE_WORKERS_TTL_S = 0.5  # how long one process reuses its view of the live workers


@dataclass
class _Cached:
    value: list[dict]
    at: float


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = redis.Redis.from_url(
            settings.redis_url,
            password=settings.redis_password or None,
            socket_connect_timeout=1.0,
            socket_timeout=settings.request_timeout_s + 2,
            health_check_interval=5,
            retry_on_timeout=False,
        )
        self._workers = _Cached([], 0.0)
        self.catalogue = ModelCatalogue(self.client, settings.heartbeat_stale_s, settings.default_model)

    # -- workers and models ------------------------------------------------
    def live_workers(self, fresh: bool = False) -> list[dict]:
        now = time.monotonic()
        if fresh or now - self._workers.at > LIVE_WORKERS_TTL_S:
            self._workers = _Cached(live_workers(self.client, self.settings.heartbeat_stale_s), now)
        return self._workers.value

    def model_record(self, name: str, version: str) -> ModelRecord | None:
        return self.catalogue.record(name, version)

    # -- result cache ------------------------------------------------------
    def cached_top(self, name: str, version: str, sha256: str) -> list | None:
        """The top list cached for this upload and model version."""
        if not self.settings.cache_enabled:
            return None
        raw = self.client.get(keys.cache(name, version, sha256))
        return json.loads(raw) if raw is not None else None

    # -- predictions and feedback -----------------------------------------
    def save_prediction(self, prediction_id: str, record: dict, top: list, image: bytes | None) -> None:
        """Remember a prediction for feedback, cache its answer, keep the image if configured."""
        s = self.settings
        pipe = self.client.pipeline(transaction=False)
        pipe.set(keys.prediction(prediction_id), json.dumps(record), ex=s.prediction_ttl_s)
        if s.cache_enabled and top:
            cache_key = keys.cache(record["model_name"], record["model_version"], record["sha256"])
            pipe.set(cache_key, json.dumps(top), ex=s.cache_ttl_s)
        if image is not None:
            # NX: an image already kept for good (feedback named it) must not get a TTL back.
            pipe.set(keys.image(record["sha256"]), image, ex=s.prediction_ttl_s, nx=True)
        pipe.execute()

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

    def queue_depth(self, stream: str) -> tuple[int, int]:
        """(entries in a model's stream, of which delivered but not yet answered)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(stream)
        pipe.xpending(stream, keys.JOBS_GROUP)
        try:
            length, pending = pipe.execute()
        except redis.ResponseError:  # no group yet: no worker ever started
            return 0, 0
        return int(length), int(pending["pending"])


def get_store() -> Store:
    return current_app.extensions["store"]

"""Predictions remembered for PREDICTION_TTL_S so feedback can refer to them, and the
uploaded image beside them when KEEP_FEEDBACK_IMAGES is on."""

from __future__ import annotations

import json

import redis
from redis.client import Pipeline

from imgclf_contract import keys


class Predictions:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    def save(self, pipe: Pipeline, prediction_id: str, record: dict, image: bytes | None) -> None:
        """The record (sha256, model, top-5), and the image bytes when given, both for ttl_s: added
        to ``pipe`` (a pipeline of the store), which the caller sends."""
        pipe.set(keys.prediction(prediction_id), json.dumps(record), ex=self.ttl_s)
        if image is not None:
            # NX: an image already kept for good (feedback named it) must not get a TTL back.
            pipe.set(keys.image(record["sha256"]), image, ex=self.ttl_s, nx=True)

    def get(self, prediction_id: str) -> dict | None:
        raw = self.client.get(keys.prediction(prediction_id))
        return json.loads(raw) if raw else None

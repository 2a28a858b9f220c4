"""Feedback records: kept without expiry and indexed in arrival order, for export."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import redis

from imgclf_contract import keys

EXPORT_CHUNK = 500


class FeedbackLog:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._adopted = False

    def _adopt_legacy_index(self) -> None:
        """Before issue #12 the index was ``imgclf:feedback:ids``, inside the per-id family (so
        GET /api/v1/feedback/ids hit a list): move it once, before the first read or write."""
        if not self._adopted:
            with contextlib.suppress(redis.ResponseError):  # no legacy index: the usual case
                self.client.renamenx(keys.LEGACY_FEEDBACK_INDEX, keys.FEEDBACK_INDEX)
            self._adopted = True

    def save(self, record: dict) -> None:
        """Stored without TTL and indexed, so it survives for export (Redis AOF makes it durable);
        the image it names (KEEP_FEEDBACK_IMAGES) is kept for good too."""
        self._adopt_legacy_index()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(keys.feedback(record["id"]), json.dumps(record))
        pipe.rpush(keys.FEEDBACK_INDEX, record["id"])
        if record.get("image_key"):
            pipe.persist(record["image_key"])
        pipe.execute()

    def get(self, feedback_id: str) -> dict | None:
        raw = self.client.get(keys.feedback(feedback_id))
        return json.loads(raw) if raw else None

    def all(self) -> Iterator[dict]:
        """Every record, oldest first, read in chunks."""
        self._adopt_legacy_index()
        total = self.client.llen(keys.FEEDBACK_INDEX)
        for start in range(0, total, EXPORT_CHUNK):
            ids = [i.decode() for i in self.client.lrange(keys.FEEDBACK_INDEX, start, start + EXPORT_CHUNK - 1)]
            for raw in self.client.mget([keys.feedback(i) for i in ids]):
                if raw is not None:
                    yield json.loads(raw)

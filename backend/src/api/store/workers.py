"""The workers as the API sees them: who is live, and the model records they publish."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from imgclf_contract import keys
from imgclf_contract.liveness import live_workers
from imgclf_contract.model_record import ModelRecord

LIVE_WORKERS_TTL_S = 0.5  # how long one process reuses its view of the live workers


@dataclass(frozen=True)
class _Snapshot:
    workers: list[dict]
    at: float


class Workers:
    def __init__(self, client: redis.Redis, store: redis.Redis, stale_s: float) -> None:
        self.client = client  # the queue: heartbeats and the base models' records
        self.store = store  # custom models' records (durable, written by the trainer)
        self.stale_s = stale_s
        self._snapshot = _Snapshot([], 0.0)
        self._models: dict[tuple[str, str], ModelRecord] = {}

    def live(self, fresh: bool = False) -> list[dict]:
        """Heartbeat records of the live workers; reused for LIVE_WORKERS_TTL_S unless ``fresh``."""
        now = time.monotonic()
        if fresh or now - self._snapshot.at > LIVE_WORKERS_TTL_S:
            self._snapshot = _Snapshot(live_workers(self.client, self.stale_s), now)
        return self._snapshot.workers

    def model_record(self, name: str, version: str) -> ModelRecord | None:
        record = self._models.get((name, version))
        if record is None:
            raw = self.client.get(keys.model(name, version)) or self.store.get(keys.model(name, version))
            if raw is None:
                return None
            record = self._models[(name, version)] = ModelRecord.from_json(raw)
        return record

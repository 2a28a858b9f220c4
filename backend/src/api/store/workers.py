"""The workers as the API sees them: who is live, and the model records they publish."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from imgclf_contract import keys
from imgclf_contract.liveness import live_workers
from imgclf_contract.model_record import ModelRecord, version_key

LIVE_WORKERS_TTL_S = 0.5  # how long one process reuses its view of the live workers


@dataclass(frozen=True)
class CurrentModel:
    """The model the live workers serve, its backend, and how many workers serve it."""

    record: ModelRecord
    backend: str
    workers: int


@dataclass(frozen=True)
class _Snapshot:
    workers: list[dict]
    at: float


class Workers:
    def __init__(self, client: redis.Redis, stale_s: float) -> None:
        self.client = client
        self.stale_s = stale_s
        self._snapshot = _Snapshot([], 0.0)
        self._models: dict[tuple[str, str], ModelRecord] = {}

    def live(self, fresh: bool = False) -> list[dict]:
        """Heartbeat records of the live workers; reused for LIVE_WORKERS_TTL_S unless ``fresh``."""
        now = time.monotonic()
        if fresh or now - self._snapshot.at > LIVE_WORKERS_TTL_S:
            self._snapshot = _Snapshot(live_workers(self.client, self.stale_s), now)
        return self._snapshot.workers

    def served_versions(self) -> list[tuple[str, str]]:
        """(model name, version) pairs live workers serve, newest version first."""
        versions = {(w["model_name"], w["model_version"]) for w in self.live()}
        return sorted(versions, key=lambda nv: version_key(nv[1]), reverse=True)

    def model_record(self, name: str, version: str) -> ModelRecord | None:
        record = self._models.get((name, version))
        if record is None:
            raw = self.client.get(keys.model(name, version))
            if raw is None:
                return None
            record = self._models[(name, version)] = ModelRecord.from_json(raw)
        return record

    def current_model(self) -> CurrentModel | None:
        """The model the live workers serve (newest version wins), or None when none is published."""
        workers = self.live()
        if not workers:
            return None
        newest = max(workers, key=lambda w: version_key(w["model_version"]))
        record = self.model_record(newest["model_name"], newest["model_version"])
        if record is None:
            return None
        serving = sum(1 for w in workers if w["model_version"] == record.version)
        return CurrentModel(record, newest["backend"], serving)

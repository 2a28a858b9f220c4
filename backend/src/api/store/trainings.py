"""Training jobs as the API sees them: start one (one per model name at a time), read its state."""

from __future__ import annotations

import json
import uuid

import redis

from imgclf_contract import keys
from imgclf_contract.liveness import redis_now_ms
from imgclf_contract.training import ACTIVE, Status, fail_if_stale

_JSON_FIELDS = ("report", "counts")
_NUMBER_FIELDS = (
    "epoch",
    "max_epochs",
    "holdout_accuracy",
    "holdout",
    "created_ms",
    "started_ms",
    "finished_ms",
    "heartbeat_ms",
    "images",
)


class Trainings:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def running_for(self, model: str) -> str | None:
        """The id of the queued or running training for this model name, if any (stale ones are failed first)."""
        holder = self.client.get(keys.training_lock(model))
        if holder is None:
            return None
        state = self.get(holder.decode())
        return holder.decode() if state and state["status"] in ACTIVE else None

    def start(self, model: str, dataset: str, holdout: float, counts: dict[str, int]) -> str | None:
        """Queue a training; None when one is already queued or running for ``model`` (409)."""
        training_id = uuid.uuid4().hex
        if not self.client.set(keys.training_lock(model), training_id, nx=True):
            if self.running_for(model) is not None:
                return None
            self.client.set(keys.training_lock(model), training_id)  # the holder finished or died
        state = {
            "id": training_id,
            "model": model,
            "dataset": dataset,
            "holdout": holdout,
            "status": Status.QUEUED.value,
            "phase": "queued",
            "created_ms": redis_now_ms(self.client),
            "images": sum(counts.values()),
            "counts": json.dumps(counts),
        }
        pipe = self.client.pipeline()
        pipe.hset(keys.training(training_id), mapping=state)
        pipe.rpush(keys.TRAINING_INDEX, training_id)
        pipe.lpush(keys.TRAINING_QUEUE, training_id)
        pipe.execute()
        return training_id

    def get(self, training_id: str) -> dict | None:
        raw = self.client.hgetall(keys.training(training_id))
        if not raw:
            return None
        state = {k.decode(): v.decode() for k, v in raw.items()}
        if state["status"] == Status.RUNNING and fail_if_stale(self.client, training_id, state["model"]):
            return self.get(training_id)
        return _typed(state)


def _typed(state: dict[str, str]) -> dict:
    out: dict = dict(state)
    for name in _JSON_FIELDS:
        if name in out:
            out[name] = json.loads(out[name])
    for name in _NUMBER_FIELDS:
        if name in out:
            out[name] = float(out[name]) if "." in out[name] else int(out[name])
    return out

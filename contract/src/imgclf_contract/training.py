"""Datasets and trainings: the limits and the state rules the API and the trainer share.

A training is a Redis hash (``keys.training``) the API creates as ``queued``; the
trainer takes its id from ``keys.TRAINING_QUEUE``, marks it ``running`` and stamps
``heartbeat_ms`` (Redis clock) every second while it works. A running training
whose stamp is older than ``STALE_S`` belongs to a trainer that died: whoever
reads it first (API or a restarted trainer) marks it ``failed`` and frees the
name's lock, so a killed trainer's job reads as failed within ``STALE_S``.
Publishing a version and marking the training ``succeeded`` is one transaction,
so a killed trainer never leaves a half-published version.
"""

from __future__ import annotations

from enum import StrEnum

import redis

from imgclf_contract import keys
from imgclf_contract.liveness import redis_now_ms

MIN_LABELS = 2
MIN_IMAGES_PER_LABEL = 5
MAX_LABELS = 1000
LABEL_MAX_CHARS = 100
HEARTBEAT_S = 1.0
STALE_S = 10.0  # a running training silent this long is failed


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ACTIVE = (Status.QUEUED, Status.RUNNING)


def fail_if_stale(client: redis.Redis, training_id: str, name: str) -> bool:
    """Mark a running training whose trainer went silent as failed; True if it was.

    An optimistic transaction (WATCH), not a script: the store's ACL allows no scripting. A
    heartbeat landing meanwhile aborts it, rightly: that trainer is alive.
    """
    message = f"The trainer stopped (no sign of life for {STALE_S:g} s); nothing was published. Start it again."
    key, lock = keys.training(training_id), keys.training_lock(name)
    with client.pipeline() as pipe:
        try:
            pipe.watch(key, lock)
            status, beat = pipe.hmget(key, "status", "heartbeat_ms")
            now_ms = redis_now_ms(pipe)
            if status != Status.RUNNING.value.encode() or now_ms - int(beat or 0) < STALE_S * 1000:
                return False
            holder = pipe.get(lock)
            pipe.multi()
            pipe.hset(
                key, mapping={"status": Status.FAILED.value, "phase": "failed", "error": message, "finished_ms": now_ms}
            )
            if holder == training_id.encode():
                pipe.delete(lock)
            pipe.execute()
        except redis.WatchError:
            return False
    return True


def label_problem(label: str) -> str | None:
    """Why ``label`` is not acceptable, or None: 1-100 characters, not only spaces, no control characters."""
    if not 1 <= len(label) <= LABEL_MAX_CHARS:
        return f"a label has 1 to {LABEL_MAX_CHARS} characters (got {len(label)})"
    if not label.strip():
        return "a label cannot be only spaces"
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        return "a label cannot contain control characters"
    return None


def trainability_problem(counts: dict[str, int]) -> str | None:
    """Why a dataset with these images per label cannot be trained, or None."""
    if len(counts) < MIN_LABELS:
        return f"A training needs at least {MIN_LABELS} labels; this dataset has {len(counts)}."
    few = sorted(label for label, n in counts.items() if n < MIN_IMAGES_PER_LABEL)
    if few:
        shown = ", ".join(repr(label) for label in few[:10])
        return f"Every label needs at least {MIN_IMAGES_PER_LABEL} images; too few for {shown}."
    return None

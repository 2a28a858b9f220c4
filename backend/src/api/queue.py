"""The API's side of the job streams: bounded enqueue, then block for the answer.

Each model version has its own stream (``keys.jobs``). The Lua script makes
"is a worker serving this model alive, is there room in its stream, add the
job" one atomic step, so no stream grows past MAX_QUEUE and a job is never
queued when nobody will take it. The API then blocks on the job's reply list (BLPOP)
until its deadline: no polling anywhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum

import redis

from api.settings import ApiSettings
from imgclf_contract import keys
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.jobs import Job, Result, now_ms
from imgclf_contract.liveness import LIVE_COUNT_LUA
from imgclf_contract.model_record import ModelRecord


class Refusal(IntEnum):
    """Why the scripts would not take a job (what they return instead of the live-worker count)."""

    NO_WORKER = -1
    QUEUE_FULL = -2


# KEYS: stream, workers zset; ARGV: staleness ms, MAX_QUEUE, then the job's field/value pairs.
_ENQUEUE = (
    LIVE_COUNT_LUA
    + f"""
if live == 0 then return {Refusal.NO_WORKER.value} end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {Refusal.QUEUE_FULL.value} end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
return live
"""
)

# The same checks without adding anything: refuse an overload before spending a decode on it.
_ADMIT = (
    LIVE_COUNT_LUA
    + f"""
if live == 0 then return {Refusal.NO_WORKER.value} end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {Refusal.QUEUE_FULL.value} end
return live
"""
)


@dataclass(frozen=True)
class QueueDepth:
    entries: int  # in the stream: waiting or being processed
    in_progress: int  # delivered to a worker, not yet answered

    @property
    def waiting(self) -> int:
        return self.entries - self.in_progress


class JobQueue:
    def __init__(self, client: redis.Redis, settings: ApiSettings) -> None:
        self.client = client
        self.max_queue = settings.max_queue
        self.stale_s = settings.heartbeat_stale_s
        self.timeout_s = settings.request_timeout_s
        self._enqueue = client.register_script(_ENQUEUE)
        self._admit = client.register_script(_ADMIT)

    def _checks(self, record: ModelRecord) -> tuple[list[str], list]:
        """The stream and serving set of the version that runs the model (a custom model's base)
        (the liveness rule reads KEYS[2])."""
        script_keys = [keys.jobs(*record.backbone), keys.serving(*record.backbone)]
        return script_keys, [int(self.stale_s * 1000), self.max_queue]

    def admit(self, record: ModelRecord) -> None:
        """Cheap early check, before any decoding: a worker serving the model is live and its queue has room."""
        script_keys, args = self._checks(record)
        self._raise_for(record, self._admit(keys=script_keys, args=args))

    def submit(self, request_id: str, record: ModelRecord, tensor: bytes, deadline_ms: int, embed: bool = False) -> Job:
        """Queue one image for ``record``; a custom model's job goes to its base with the head named."""
        head = f"{record.name}:{record.version}" if record.is_custom else ""
        job = Job(uuid.uuid4().hex, request_id, deadline_ms, *record.backbone, tensor, head=head, embed=embed)
        script_keys, args = self._checks(record)
        for name, value in job.to_fields().items():
            args.extend((name, value))
        try:
            status = self._enqueue(keys=script_keys, args=args)
        except redis.exceptions.OutOfMemoryError:  # the queue Redis reached its maxmemory
            raise ServiceError(
                ErrorCode.SERVICE_UNAVAILABLE,
                "The job queue is out of memory right now; try again shortly.",
                {"missing": "queue memory"},
            ) from None
        self._raise_for(record, status)
        return job

    def _raise_for(self, record: ModelRecord, status: int) -> None:
        if status == Refusal.NO_WORKER:
            shown = f"{record.name}:{record.version}"
            raise ServiceError(
                ErrorCode.SERVICE_UNAVAILABLE,
                f"No inference worker serving {shown} is running right now; try again shortly.",
                {"missing": "workers", "model": shown},
            )
        if status == Refusal.QUEUE_FULL:
            raise ServiceError(
                ErrorCode.QUEUE_FULL,
                f"The service is busy ({self.max_queue} images are waiting); try again shortly.",
                {"max_queue": self.max_queue},
            )

    def wait(self, job: Job) -> Result:
        """Block until the worker answers or the job's deadline passes (504)."""
        remaining_s = (job.deadline_ms - now_ms()) / 1000
        reply = self.client.blpop([keys.reply(job.job_id)], timeout=remaining_s) if remaining_s > 0 else None
        if reply is None:
            raise timeout_error(self.timeout_s)
        return Result.from_json(reply[1])

    def depth(self, record: ModelRecord) -> QueueDepth:
        """How many jobs are in the model version's stream, and how many of them a worker holds."""
        stream = keys.jobs(record.name, record.version)
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(stream)
        pipe.xpending(stream, keys.JOBS_GROUP)
        try:
            length, pending = pipe.execute()
        except redis.ResponseError:  # no group yet: no worker ever started
            return QueueDepth(0, 0)
        return QueueDepth(int(length), int(pending["pending"]))


def timeout_error(timeout_s: float) -> ServiceError:
    """504: REQUEST_TIMEOUT_S passed, waiting for a decode slot or for a worker."""
    return ServiceError(
        ErrorCode.TIMEOUT,
        f"No result within {timeout_s:g} s; the service is overloaded or a worker failed. Try again.",
        {"request_timeout_s": timeout_s},
    )

"""The API's side of the job streams: bounded enqueue, then block for the answer.

Each model version has its own stream (``keys.jobs``). The Lua script makes
"is a worker serving this model alive, is there room in its stream, add the
job" one atomic step, so no stream grows past MAX_QUEUE and a job is never
queued when nobody will take it. The API then blocks on the job's reply list (BLPOP)
until its deadline: no polling anywhere.
"""

from __future__ import annotations

import uuid

import redis

from ml_worker.contract import keys
from ml_worker.contract.config import Settings
from ml_worker.contract.errors import ErrorCode, ServiceError
from ml_worker.contract.jobs import Job, Result, now_ms
from ml_worker.contract.model_record import ModelRecord

_ENQUEUE = """
local now = redis.call('TIME')
local live = redis.call('ZCOUNT', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[1]), '+inf')
if live == 0 then return -1 end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return -2 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
return live
"""

_ADMIT = """
local now = redis.call('TIME')
local live = redis.call('ZCOUNT', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[1]), '+inf')
return {live, redis.call('XLEN', KEYS[1])}
"""


class JobQueue:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.max_queue = settings.max_queue
        self.stale_s = settings.heartbeat_stale_s
        self.timeout_s = settings.request_timeout_s
        self._enqueue = client.register_script(_ENQUEUE)
        self._admit = client.register_script(_ADMIT)

    def admit(self, record: ModelRecord) -> None:
        """Cheap early check, before any decoding: a worker serving the model is live and its queue has room."""
        live, length = self._admit(keys=self._keys(record), args=[int(self.stale_s * 1000)])
        self._raise_for(record, -1 if live == 0 else -2 if length >= self.max_queue else 0)

    def submit(self, request_id: str, record: ModelRecord, tensor: bytes, deadline_ms: int) -> Job:
        job = Job(uuid.uuid4().hex, request_id, deadline_ms, record.name, record.version, tensor)
        args: list = [int(self.stale_s * 1000), self.max_queue]
        for name, value in job.to_fields().items():
            args.extend((name, value))
        self._raise_for(record, self._enqueue(keys=self._keys(record), args=args))
        return job

    @staticmethod
    def _keys(record: ModelRecord) -> list[str]:
        return [keys.jobs(record.name, record.version), keys.serving(record.name, record.version)]

    def _raise_for(self, record: ModelRecord, status: int) -> None:
        if status == -1:
            raise ServiceError(
                ErrorCode.SERVICE_UNAVAILABLE,
                f"No inference worker serving {record.name}:{record.version} is running right now; try again shortly.",
                {"missing": "workers", "model": f"{record.name}:{record.version}"},
            )
        if status == -2:
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
            raise ServiceError(
                ErrorCode.TIMEOUT,
                f"No result within {self.timeout_s:g} s; the service is overloaded or a worker failed. Try again.",
                {"request_timeout_s": self.timeout_s},
            )
        return Result.from_json(reply[1])

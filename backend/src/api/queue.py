"""The API's side of the job streams: bounded enqueue, then block for the answer.

Each model version has its own stream (``keys.jobs``). The Lua script makes
"is a worker serving this model alive, is there room in its stream, add the
job" one atomic step, so no stream grows past MAX_QUEUE and a job is never
queued when nobody will take it. The job's tensor goes to its own key just before (a plain
SET: the script never sees the 150 KB, which Lua would hash byte by byte), and the script
deletes it with a refusal. The API then blocks on the job's reply list (BLPOP) until its
deadline: no polling anywhere. All three go to Redis together, one round trip: a refused
job's script pushes its refusal onto the reply list, so the BLPOP behind it returns at once.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from enum import IntEnum

import redis
from redis.connection import AbstractConnection

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
    NO_TENSOR = -3  # the tensor's SET before the script was refused (the queue Redis is out of memory)


REFUSAL_TTL_S = 60  # a refusal nobody popped (the connection broke in between) does not linger
_REFUSED = f"""
if live == 0 then refusal = {Refusal.NO_WORKER.value}
elseif redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then refusal = {Refusal.QUEUE_FULL.value} end
"""

# KEYS: stream, serving zset, reply list, tensor; ARGV: staleness ms, MAX_QUEUE, then the job's field/value pairs.
_ENQUEUE = (
    LIVE_COUNT_LUA
    + f"local refusal = nil\nif redis.call('EXISTS', KEYS[4]) == 0 then refusal = {Refusal.NO_TENSOR.value} end"
    + _REFUSED
    + f"""
if refusal then
  redis.call('DEL', KEYS[4])
  redis.call('RPUSH', KEYS[3], refusal)
  redis.call('EXPIRE', KEYS[3], {REFUSAL_TTL_S})
  return refusal
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
return live
"""
)

# The same checks without adding anything: refuse an overload before spending a decode on it.
# KEYS[3], when given, is the upload's result-cache key (the cache shares this Redis): a
# cached answer is returned instead, and needs no worker.
_ADMIT = (
    """
if KEYS[3] then
  local hit = redis.call('GET', KEYS[3])
  if hit then return hit end
end
"""
    + LIVE_COUNT_LUA
    + "local refusal = nil"
    + _REFUSED
    + "return refusal or live\n"
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

    def admit(self, record: ModelRecord, cache_key: str | None = None) -> bytes | None:
        """Cheap early check, before any decoding: a worker serving the model is live and its queue
        has room. With ``cache_key`` (a key in this Redis) its cached answer, when there is one, is
        returned instead, in the same round trip."""
        script_keys, args = self._checks(record)
        status = self._admit(keys=[*script_keys, cache_key] if cache_key else script_keys, args=args)
        if isinstance(status, bytes):
            return status
        self._raise_for(record, status)
        return None

    def run(self, request_id: str, record: ModelRecord, tensor: bytes, deadline_ms: int, embed: bool = False) -> Result:
        """Queue one image for ``record`` and block until the worker answers or the deadline
        passes (504); a custom model's job goes to its base with the head named."""
        head = f"{record.name}:{record.version}" if record.is_custom else ""
        job = Job(uuid.uuid4().hex, request_id, deadline_ms, *record.backbone, tensor, head=head, embed=embed)
        script_keys, args = self._checks(record)
        for name, value in job.to_fields().items():
            args.extend((name, value))
        status, reply = self._enqueue_and_wait(job, [*script_keys, keys.reply(job.job_id), job.tensor_key], args)
        self._raise_for(record, status)
        if reply is None:
            raise timeout_error(self.timeout_s)
        return Result.from_json(reply[1])

    def _enqueue_and_wait(self, job: Job, script_keys: list[str], args: list) -> tuple[int, list | None]:
        """The tensor's SET, EVALSHA and the BLPOP on the reply list, sent together: (the
        script's status, BLPOP's reply)."""
        # A deadline already past still sends the job (the worker skips it) but waits only a moment.
        timeout_s = max((job.deadline_ms - now_ms()) / 1000, 0.001)
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            try:
                return self._send_all(connection, job, script_keys, args, timeout_s)
            except redis.exceptions.NoScriptError:  # a restarted Redis: load the script, once
                self.client.script_load(_ENQUEUE)
                return self._send_all(connection, job, script_keys, args, timeout_s)
        except redis.exceptions.OutOfMemoryError:  # the queue Redis reached its maxmemory
            self._drop_tensor(job)
            raise queue_out_of_memory() from None
        finally:
            pool.release(connection)

    def _drop_tensor(self, job: Job) -> None:
        """After an out-of-memory refusal, best effort: a SET that fit just under the limit and a
        script refused just over it would leave the tensor holding the full Redis until it
        expires (UNLINK is allowed at the limit)."""
        with contextlib.suppress(redis.RedisError):
            self.client.unlink(job.tensor_key)

    def _send_all(
        self, connection: AbstractConnection, job: Job, script_keys: list[str], args: list, timeout_s: float
    ) -> tuple[int, list | None]:
        tensor = ("SET", job.tensor_key, job.tensor, "PX", job.tensor_ttl_ms())
        evalsha = ("EVALSHA", self._enqueue.sha, len(script_keys), *script_keys, *args)
        blpop = ("BLPOP", keys.reply(job.job_id), timeout_s)
        connection.send_packed_command(connection.pack_commands([tensor, evalsha, blpop]))
        try:
            connection.read_response()  # raises an out-of-memory refusal of the SET
            status = connection.read_response()  # raises the script's error
            return int(status), connection.read_response()
        except BaseException:
            # Redis still runs what was sent after an error (a script refused for want of memory,
            # or that adds a job whose tensor was refused: a worker drops that one); only the
            # replies are dropped with the connection, so the next command finds it clean.
            connection.disconnect()
            raise

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
        if status == Refusal.NO_TENSOR:
            raise queue_out_of_memory()

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


def queue_out_of_memory() -> ServiceError:
    return ServiceError(
        ErrorCode.SERVICE_UNAVAILABLE,
        "The job queue is out of memory right now; try again shortly.",
        {"missing": "queue memory"},
    )


def timeout_error(timeout_s: float) -> ServiceError:
    """504: REQUEST_TIMEOUT_S passed, waiting for a decode slot or for a worker."""
    return ServiceError(
        ErrorCode.TIMEOUT,
        f"No result within {timeout_s:g} s; the service is overloaded or a worker failed. Try again.",
        {"request_timeout_s": timeout_s},
    )

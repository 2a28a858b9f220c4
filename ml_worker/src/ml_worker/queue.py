"""The worker's side of the job streams: take batches, re-claim orphans, answer.

Each model version has its own Redis Stream (``keys.jobs``), read through a
consumer group, so any number of workers on any number of hosts share a
model's jobs and a worker serving several models reads all their streams in
one blocking call. A batch comes from one stream only, so it never mixes
models. A job stays pending for its consumer until the answer is written; if
the consumer dies, another claims it after ``CLAIM_IDLE_MS`` (at-least-once).
A job's tensor has its own key (``keys.tensor``): read with one MGET per read of the
streams, deleted with the entry once answered. Answers go to a per-job list the API blocks on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis

from imgclf_contract import keys
from imgclf_contract.jobs import Job, Result

log = logging.getLogger("ml_worker.queue")


@dataclass(frozen=True)
class Delivery:
    entry_id: str
    job: Job | None  # None: the entry was malformed and is dropped
    deliveries: int = 1


@dataclass(frozen=True)
class Batch:
    """Jobs from one stream, oldest first: what one inference call answers."""

    stream: str
    deliveries: list[Delivery]

    @property
    def oldest(self) -> tuple[int, int]:
        """Stream ids are "<ms>-<seq>": the batch whose first job arrived first goes first."""
        ms, _, seq = self.deliveries[0].entry_id.partition("-")
        return int(ms), int(seq or 0)


class JobConsumer:
    def __init__(
        self, client: redis.Redis, consumer: str, streams: list[str], claim_idle_ms: int, reply_ttl_s: int
    ) -> None:
        self.client = client
        self.consumer = consumer
        self.streams = streams
        self.claim_idle_ms = claim_idle_ms
        self.reply_ttl_s = reply_ttl_s
        self._last_claim = 0.0
        self._claiming = threading.Lock()  # one lane at a time scans for orphans
        # Entries a lane holds now: both lanes claim as one consumer, so XAUTOCLAIM would hand a
        # sibling's slow batch (a custom head's fetch) to the other lane as an orphan.
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        # XAUTOCLAIM scans a pending list in pages; resume each stream's scan where it stopped
        self._claim_cursor = dict.fromkeys(streams, "0-0")

    def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, keys.JOBS_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _tensors(self, entries: list) -> list[bytes | None]:
        """Each entry's tensor, in one round trip (None where the entry names no readable job id,
        or the key is gone)."""
        tensor_keys = [_tensor_key(fields.get(b"job_id")) for _entry_id, fields in entries]
        named = [key for key in tensor_keys if key]
        found = iter(self.client.mget(named) if named else [])
        return [next(found) if key else None for key in tensor_keys]

    def _decode(self, entries: list, deliveries: dict[str, int] | None = None) -> list[Delivery]:
        """Malformed entries become deliveries without a job (acknowledged, never retried); so
        does a job whose tensor is gone before its deadline: another worker answered it first,
        after claiming it from this one. Past its deadline, it is skipped as expired."""
        out = []
        for (raw_id, fields), tensor in zip(entries, self._tensors(entries), strict=True):
            entry_id = _text(raw_id)
            try:
                job: Job | None = Job.from_fields(fields, tensor or b"")
            except ValueError as exc:
                log.error("dropping malformed job %s: %s", entry_id, exc)
                job = None
            if job is not None and tensor is None and not job.expired():
                log.warning("dropping job %s: its tensor is gone (answered by another worker?)", job.job_id)
                job = None
            out.append(Delivery(entry_id, job, (deliveries or {}).get(entry_id, 1)))
        return out

    def _read(self, count: int, block_ms: int | None, streams: list[str] | None = None) -> dict[str, list]:
        """New entries for this consumer from every stream, or those named (at most ``count`` each);
        None: no wait."""
        response = self.client.xreadgroup(
            keys.JOBS_GROUP, self.consumer, dict.fromkeys(streams or self.streams, ">"), count=count, block=block_ms
        )
        return {_text(stream): entries for stream, entries in response or [] if entries}

    def _claim(self, stream: str, count: int) -> list[Delivery]:
        cursor, entries, _deleted = self.client.xautoclaim(
            stream, keys.JOBS_GROUP, self.consumer, self.claim_idle_ms, self._claim_cursor[stream], count=count
        )
        self._claim_cursor[stream] = _text(cursor)
        with self._in_flight_lock:
            entries = [(entry_id, fields) for entry_id, fields in entries if _text(entry_id) not in self._in_flight]
        if not entries:
            return []
        pipe = self.client.pipeline(transaction=False)
        for entry_id, _fields in entries:
            pipe.xpending_range(stream, keys.JOBS_GROUP, min=entry_id, max=entry_id, count=1)
        pending = [rows[0] for rows in pipe.execute() if rows]
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        log.warning("claimed %d orphaned jobs from %s", len(entries), stream)
        return self._decode(entries, counts)

    def claim_orphans(self, count: int) -> list[Batch]:
        """Jobs idle longer than CLAIM_IDLE_MS in a (presumably dead) consumer's hands."""
        if not self._claiming.acquire(blocking=False):
            return []
        try:
            now = time.monotonic()
            if now - self._last_claim < self.claim_idle_ms / 2000:
                return []
            self._last_claim = now
            claimed = [(stream, self._claim(stream, count)) for stream in self.streams]
        finally:
            self._claiming.release()
        return self._held([Batch(stream, deliveries) for stream, deliveries in claimed if deliveries])

    def _held(self, batches: list[Batch]) -> list[Batch]:
        """Batches a lane now holds, until ``finish``."""
        with self._in_flight_lock:
            self._in_flight.update(d.entry_id for batch in batches for d in batch.deliveries)
        return batches

    def backed_up(self, at_least: int) -> list[str]:
        """The streams with at least ``at_least`` jobs no consumer has taken yet, in one round trip.
        A job is deleted when it is acknowledged, so what of a stream is not pending is waiting
        (an upper bound: entries stranded by a consumer that left the group count too)."""
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xlen(stream)
            pipe.xpending(stream, keys.JOBS_GROUP)
        replies = pipe.execute()
        lengths, pendings = replies[::2], replies[1::2]
        waiting = (n - p["pending"] for n, p in zip(lengths, pendings, strict=True))
        return [stream for stream, n in zip(self.streams, waiting, strict=True) if n >= at_least]

    def take(self, max_batch: int, streams: list[str]) -> list[Batch]:
        """Up to max_batch waiting jobs from each of ``streams`` at once, no waiting (a helper lane's read)."""
        return self._batches(self._read(max_batch, None, streams))

    def next_batches(self, max_batch: int, wait_ms: int, block_ms: int | None) -> list[Batch]:
        """Up to max_batch jobs per stream, one batch per stream, oldest first.

        When jobs are already waiting (the service is busy), wait at most wait_ms
        for more to fill the batches; an idle worker answers a lone job at once,
        whichever model it is for, since waiting would only add latency.
        """
        claimed = self.claim_orphans(max_batch)
        if claimed:
            return claimed
        entries = self._read(max_batch, None)
        if not entries:
            return self._batches(self._read(max_batch, block_ms))
        if wait_ms > 0:
            deadline = time.monotonic() + wait_ms / 1000
            while (room := max_batch - max(map(len, entries.values()))) > 0:
                remaining = deadline - time.monotonic()
                more = self._read(room, max(1, int(remaining * 1000))) if remaining > 0 else {}
                if not more:
                    break
                for stream, new in more.items():
                    entries.setdefault(stream, []).extend(new)
        return self._batches(entries)

    def _batches(self, entries: dict[str, list]) -> list[Batch]:
        """One batch per stream; the tensors of all of them in one round trip."""
        decoded = iter(self._decode([row for rows in entries.values() for row in rows]))
        batches = [Batch(stream, [next(decoded) for _ in rows]) for stream, rows in entries.items()]
        return self._held(sorted(batches, key=lambda b: b.oldest))

    def finish(self, batch: Batch, results: list[Result]) -> None:
        """Write the answers, then acknowledge and delete the entries and their tensors (one
        round trip; a malformed entry's tensor, if any, expires)."""
        entry_ids = [d.entry_id for d in batch.deliveries]
        tensors = [d.job.tensor_key for d in batch.deliveries if d.job is not None]
        pipe = self.client.pipeline(transaction=False)
        for result in results:
            pipe.lpush(keys.reply(result.job_id), result.to_json())
            pipe.expire(keys.reply(result.job_id), self.reply_ttl_s)
        if entry_ids:
            pipe.xack(batch.stream, keys.JOBS_GROUP, *entry_ids)
            pipe.xdel(batch.stream, *entry_ids)
        if tensors:
            pipe.unlink(*tensors)
        try:
            pipe.execute()
        finally:  # answered, or left pending for a claim once Redis is back
            with self._in_flight_lock:
                self._in_flight.difference_update(entry_ids)

    def leave(self) -> None:
        """Remove this consumer from every group; only called with nothing pending."""
        for stream in self.streams:
            self.client.xgroup_delconsumer(stream, keys.JOBS_GROUP, self.consumer)


def _tensor_key(job_id: bytes | None) -> str | None:
    try:
        return keys.tensor(job_id.decode()) if job_id else None
    except UnicodeDecodeError:  # malformed: Job.from_fields drops the entry
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

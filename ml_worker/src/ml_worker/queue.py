"""The worker's side of the job stream: take batches, re-claim orphans, answer.

Jobs live on a Redis Stream read through a consumer group, so any number of
workers share them. A job stays pending for its consumer until the answer is
written; if the consumer dies, another claims it after ``CLAIM_IDLE_MS``
(at-least-once). Answers go to a per-job list the API blocks on.
"""

from __future__ import annotations

import logging
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


class JobConsumer:
    def __init__(self, client: redis.Redis, consumer: str, claim_idle_ms: int, reply_ttl_s: int) -> None:
        self.client = client
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.reply_ttl_s = reply_ttl_s
        self._last_claim = 0.0
        self._claim_cursor = "0-0"  # XAUTOCLAIM scans the pending list in pages; resume where it stopped

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(keys.JOBS_STREAM, keys.JOBS_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _decode(self, entries: list, deliveries: dict[str, int] | None = None) -> list[Delivery]:
        out = []
        for raw_id, fields in entries:
            entry_id = _text(raw_id)
            try:
                job = Job.from_fields(fields)
            except ValueError as exc:
                log.error("dropping malformed job %s: %s", entry_id, exc)
                job = None
            out.append(Delivery(entry_id, job, (deliveries or {}).get(entry_id, 1)))
        return out

    def _read(self, count: int, block_ms: int | None) -> list:
        """New entries for this consumer; block_ms=None returns at once."""
        response = self.client.xreadgroup(
            keys.JOBS_GROUP, self.consumer, {keys.JOBS_STREAM: ">"}, count=count, block=block_ms
        )
        return response[0][1] if response else []

    def claim_orphans(self, count: int) -> list[Delivery]:
        """Jobs idle longer than CLAIM_IDLE_MS in a (presumably dead) consumer's hands."""
        now = time.monotonic()
        if now - self._last_claim < self.claim_idle_ms / 2000:
            return []
        self._last_claim = now
        cursor, entries, _deleted = self.client.xautoclaim(
            keys.JOBS_STREAM, keys.JOBS_GROUP, self.consumer, self.claim_idle_ms, self._claim_cursor, count=count
        )
        self._claim_cursor = _text(cursor)
        if not entries:
            return []
        pipe = self.client.pipeline(transaction=False)
        for entry_id, _fields in entries:
            pipe.xpending_range(keys.JOBS_STREAM, keys.JOBS_GROUP, min=entry_id, max=entry_id, count=1)
        pending = [rows[0] for rows in pipe.execute() if rows]
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        log.warning("claimed %d orphaned jobs", len(entries))
        return self._decode(entries, counts)

    def next_batch(self, max_batch: int, wait_ms: int, block_ms: int | None) -> list[Delivery]:
        """Up to max_batch jobs.

        When jobs are already waiting (the service is busy), wait at most wait_ms
        for more to fill the batch; an idle worker answers a lone job at once,
        since nothing suggests company is coming and waiting would only add latency.
        """
        claimed = self.claim_orphans(max_batch)
        if claimed:
            return claimed
        entries = self._read(max_batch, None)
        if not entries:
            return self._decode(self._read(max_batch, block_ms))
        if wait_ms > 0:
            deadline = time.monotonic() + wait_ms / 1000
            while len(entries) < max_batch and (remaining := deadline - time.monotonic()) > 0:
                more = self._read(max_batch - len(entries), max(1, int(remaining * 1000)))
                if not more:
                    break
                entries.extend(more)
        return self._decode(entries)

    def finish(self, entry_ids: list[str], results: list[Result]) -> None:
        """Write the answers, then acknowledge and delete the entries (one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for result in results:
            pipe.lpush(keys.reply(result.job_id), result.to_json())
            pipe.expire(keys.reply(result.job_id), self.reply_ttl_s)
        if entry_ids:
            pipe.xack(keys.JOBS_STREAM, keys.JOBS_GROUP, *entry_ids)
            pipe.xdel(keys.JOBS_STREAM, *entry_ids)
        pipe.execute()

    def leave(self) -> None:
        """Remove this consumer from the group; only called with nothing pending."""
        self.client.xgroup_delconsumer(keys.JOBS_STREAM, keys.JOBS_GROUP, self.consumer)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""Shared pieces of the fault tests: a bounded load generator posting golden
photos, the stack settings that keep faults fast, and Redis/process probes.

Imported by backend/tests/test_faults_*.py as ``from testsupport import faults as fl``.
"""

from __future__ import annotations

import functools
import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import redis
import requests

from imgclf_contract import keys
from imgclf_contract.settings import SharedSettings
from ml_worker.golden import PHOTOS, Golden
from testsupport.envelope import check_envelope
from testsupport.processes import wait_until

TIMEOUT_S = 6
DEFAULT_STREAM = keys.jobs(SharedSettings.default_model, "1")  # what requests without `model` queue on
PROMPT_S = TIMEOUT_S + 2  # "promptly": no answer may take longer than this
FAST_ENV = {
    "CACHE_TTL_S": "0",  # every request really goes to a worker
    "REQUEST_TIMEOUT_S": str(TIMEOUT_S),
    "CLAIM_IDLE_MS": "1000",
    "HEARTBEAT_INTERVAL_S": "0.5",
    "HEARTBEAT_STALE_S": "2",
}
CLIENT_TIMEOUT_S = PROMPT_S + 5  # a hang shows up as an over-long outcome, never as a stuck test


@functools.cache
def photo_bytes(photo: Golden) -> bytes:
    return photo.path.read_bytes()


@dataclass(frozen=True)
class Outcome:
    """One request as the client saw it (status None: no HTTP answer at all)."""

    request_id: str
    photo: Golden
    started: float  # time.monotonic()
    elapsed: float
    status: int | None
    body: dict | None
    headers: Mapping[str, str] | None  # None: no HTTP answer at all

    @property
    def ended(self) -> float:
        return self.started + self.elapsed

    @property
    def top1(self) -> str | None:
        return self.body["predictions"][0]["label"] if self.status == 200 and self.body else None

    @property
    def correct(self) -> bool:
        return self.top1 in self.photo.accepted

    @property
    def error_code(self) -> str | None:
        return (self.body or {}).get("error", {}).get("code")


def post_photo(session: requests.Session, url: str, photo: Golden) -> Outcome:
    """POST one golden photo with our own request id (the worker sees it in the job)."""
    request_id = uuid.uuid4().hex
    started = time.monotonic()
    try:
        response = session.post(
            f"{url}/api/v1/predictions",
            files={"image": (photo.file, photo_bytes(photo))},
            headers={"X-Request-ID": request_id},
            timeout=CLIENT_TIMEOUT_S,
        )
    except requests.RequestException:
        return Outcome(request_id, photo, started, time.monotonic() - started, None, None, None)
    elapsed = time.monotonic() - started
    try:
        body = response.json()
    except ValueError:
        body = None
    return Outcome(request_id, photo, started, elapsed, response.status_code, body, response.headers)


class Load:
    """`clients` threads posting golden photos in turn until stopped, `max_s` passes
    or `max_requests` are sent, whichever comes first (use as a context manager)."""

    def __init__(self, url: str, clients: int, max_s: float, max_requests: int) -> None:
        self.url = url
        self.outcomes: list[Outcome] = []
        self._deadline = time.monotonic() + max_s
        self._tickets = itertools.count()
        self._max_requests = max_requests
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _client(self, index: int) -> None:
        photos = itertools.islice(itertools.cycle(PHOTOS), index % len(PHOTOS), None)
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                if next(self._tickets) >= self._max_requests:
                    return
                self.outcomes.append(post_photo(session, self.url, next(photos)))  # list.append is atomic

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Outcome]:
        """Stop sending, wait for the answers in flight, return every outcome."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 1)
        return self.outcomes

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def p50(url: str, samples: int = 9) -> float:
    """Median latency (s) of sequential coffee.png predictions: 'normal' at concurrency 1."""
    with requests.Session() as session:
        outcomes = [post_photo(session, url, PHOTOS[0]) for _ in range(samples)]
    assert all(o.status == 200 for o in outcomes), [o.status for o in outcomes]
    return statistics.median(o.elapsed for o in outcomes)


def restart_and_wait_healed(stack, service: str, load: Load) -> float:
    """Start ``service`` again; the time the first request started after it succeeded (0: never)."""
    stack.start(service)
    restarted = time.monotonic()
    return wait_until(
        lambda: min((o.started for o in load.outcomes if o.status == 200 and o.started > restarted), default=0),
        timeout_s=PROMPT_S,
    )


def assert_outage_handled(outcomes: list[Outcome], healed: float) -> None:
    """No answer hung, every failure was a JSON 503/504, every 200 was right, and all is well after healing."""
    assert max(o.elapsed for o in outcomes) <= PROMPT_S, "a request hung past REQUEST_TIMEOUT_S + 2 s"
    for outcome in outcomes:
        if outcome.status != 200:
            assert_error_envelope(outcome, {503, 504})
    assert all(o.correct for o in outcomes if o.status == 200)
    after = [o for o in outcomes if o.started >= healed]
    failed_after = [(o.status, o.error_code, (o.body or {}).get("error", {}).get("details")) for o in after]
    assert after and all(o.status == 200 for o in after), [f for f in failed_after if f[0] != 200]


def pending_request_ids(client: redis.Redis, consumer: str) -> set[str]:
    """Request ids of the jobs delivered to `consumer` and not yet acknowledged."""
    rows = client.xpending_range(DEFAULT_STREAM, keys.JOBS_GROUP, "-", "+", 100, consumername=consumer)
    ids = set()
    for row in rows:
        for _entry_id, fields in client.xrange(DEFAULT_STREAM, row["message_id"], row["message_id"]):
            ids.add(fields[b"request_id"].decode())
    return ids


def stream_drained(client: redis.Redis) -> bool:
    """No job waiting in the stream and none delivered but unanswered."""
    pending = client.xpending(DEFAULT_STREAM, keys.JOBS_GROUP)["pending"]
    return pending == 0 and client.xlen(DEFAULT_STREAM) == 0


def consumers(client: redis.Redis) -> set[str]:
    return {_text(c["name"]) for c in client.xinfo_consumers(DEFAULT_STREAM, keys.JOBS_GROUP)}


def assert_error_envelope(outcome: Outcome, statuses: set[int]) -> None:
    """A failure the client can act on: an expected status and the error envelope (Retry-After on 429/503)."""
    assert outcome.headers is not None, f"no HTTP answer at all: {outcome}"
    check_envelope(outcome.status, outcome.headers, outcome.body, statuses)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

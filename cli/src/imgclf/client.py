"""HTTP client of the classifier API: one pooled session, bounded retries on transient failures.

Two kinds of transient failure are told apart. An overloaded server (429, a timeout, a 500) is
retried per file, up to --max-tries. A server that is not there at all (no connection, a bad
gateway, no worker: 502/503) is waited for run-wide: every request's failure and success feed
one clock, and the whole run gives up once the server has been gone for --max-wait seconds.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_netrc_auth

from imgclf_contract.errors import ErrorCode

DEFAULT_URL = "http://127.0.0.1:8080"
# Answers that mean "try again later": overload, no worker yet, gateway trouble, and no connection at all.
TRANSIENT_CODES = frozenset(
    {
        *(
            code.value
            for code in (
                ErrorCode.RATE_LIMITED,
                ErrorCode.QUEUE_FULL,
                ErrorCode.SERVICE_UNAVAILABLE,
                ErrorCode.TIMEOUT,
                ErrorCode.BAD_GATEWAY,
                ErrorCode.INTERNAL_ERROR,
            )
        ),
        "connection_error",  # the client's own: no HTTP answer at all
        "http_error",  # a 5xx without our envelope (e.g. a proxy in between)
    }
)


# Answers that mean the server (or every worker behind it) is not there, rather than busy.
UNAVAILABLE_CODES = frozenset(
    {ErrorCode.BAD_GATEWAY.value, ErrorCode.SERVICE_UNAVAILABLE.value, "connection_error", "http_error"}
)
READY_TIMEOUT_S = (3.0, 5.0)  # connect, read: the check before a run answers within seconds
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class Cancelled(Exception):
    """The run is stopping (Ctrl-C): the request was abandoned while waiting to retry."""


class Unreachable(Exception):
    """The server could not be reached, or is not the classifier's API (the check before a run)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.reason = reason


class ServerGone(Exception):
    """The server has been unavailable for longer than --max-wait: the whole run gives up."""


def connection_reason(exc: requests.RequestException) -> str:
    """A short reason for a failed connection ("Connection refused"), not urllib3's nested repr."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time (timed out)"
    found = _ERRNO_TEXT.search(str(exc))
    return found.group(1).strip() if found else type(exc).__name__


@dataclass
class ApiError(Exception):
    """A failed request: the API's error code and message (or connection_error), and its Retry-After."""

    status: int
    code: str
    message: str
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.status or '-'} {self.code}: {self.message}"

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    @classmethod
    def from_response(cls, response: requests.Response) -> ApiError:
        try:
            error = response.json()["error"]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            code = "http_error" if response.status_code >= 500 else f"http_{response.status_code}"
            message = response.text[:200] or response.reason
        return cls(response.status_code, code, message, _retry_after(response))


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(float(response.headers["Retry-After"]), 0.0)
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: fall back to our own backoff


@dataclass(frozen=True)
class RetryPolicy:
    """max_tries attempts per file on overload; max_wait_s run-wide without a server.

    Waits double from base_s up to cap_s, never shorter than Retry-After.
    """

    max_tries: int = 6
    max_wait_s: float = 60.0
    base_s: float = 1.0
    cap_s: float = 20.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        backoff = min(self.cap_s, self.base_s * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
        return max(backoff, retry_after_s or 0.0)


class Outage:
    """Since when the server has been unavailable, shared by every request of a run (thread-safe)."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self.last_error: ApiError | None = None
        self._since: float | None = None
        self._lock = threading.Lock()

    def failed(self, error: ApiError) -> None:
        with self._lock:
            self._since = self._since if self._since is not None else time.monotonic()
            self.last_error = error

    def ended(self) -> None:
        with self._lock:
            self._since = None

    def remaining_s(self) -> float:
        """Seconds left before the run gives up; infinite while the server answers."""
        with self._lock:
            return math.inf if self._since is None else self._since + self.max_wait_s - time.monotonic()


def environment_read_once(session: requests.Session, url: str) -> requests.Session:
    """The session with the environment's proxies, CA bundle and .netrc login for `url` fixed now.

    requests reads them again for every request (os.environ scans, a .netrc lookup): a quarter of
    the client's CPU per upload, on a machine where the server wants the cores. Read once per run,
    HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and ~/.netrc still apply as before.
    """
    found = session.merge_environment_settings(url, {}, None, True, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.auth = get_netrc_auth(url)
    session.trust_env = False
    return session


class Client:
    """Thread-safe: one requests.Session whose connection pool holds one connection per concurrent request."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        pool_size: int = 4,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        timeout_s: float = 60.0,
        model: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model  # None: the server's default model answers
        self.retry = retry or RetryPolicy()
        self.outage = Outage(self.retry.max_wait_s)
        self.stop = stop or threading.Event()
        self.timeout = (5.0, timeout_s)
        self.session = environment_read_once(requests.Session(), self.url)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if api_key:
            self.session.headers["X-API-Key"] = api_key

    def close(self) -> None:
        self.session.close()

    def classify(self, name: str, data: bytes, top_k: int = 5) -> dict:
        """POST /api/v1/predictions; the response body, or ApiError once retries are exhausted."""
        files = {"image": (name, data, "application/octet-stream")}
        form = {"top_k": str(top_k), **({"model": self.model} if self.model else {})}
        return self._request("POST", "/api/v1/predictions", files=files, data=form)

    def labels(self) -> list[dict]:
        """The asked model's labels (the default's without --model): [{"index", "wnid", "name", "synonyms"}, ...]."""
        name = self.model.partition(":")[0] if self.model else None
        path = f"/api/v1/models/{quote(name, safe='')}/labels" if name else "/api/v1/labels"
        return self._request("GET", path)["labels"]

    def create_dataset(self, name: str, base: str | None) -> dict:
        return self._request("POST", "/api/v1/datasets", json={"name": name, "base_model": base})

    def dataset_images(self, name: str) -> dict[str, str]:
        """sha256 -> label of what the dataset already holds."""
        images = self._request("GET", f"/api/v1/datasets/{quote(name, safe='')}/images")["images"]
        return {image["sha256"]: image["label"] for image in images}

    def add_image(self, dataset: str, filename: str, data: bytes, label: str) -> dict:
        files = {"image": (filename, data, "application/octet-stream")}
        return self._request(
            "POST", f"/api/v1/datasets/{quote(dataset, safe='')}/images", files=files, data={"label": label}
        )

    def start_training(self, dataset: str, holdout: float) -> dict:
        return self._request("POST", "/api/v1/trainings", json={"dataset": dataset, "holdout": holdout})

    def training(self, training_id: str) -> dict:
        return self._request("GET", f"/api/v1/trainings/{quote(training_id, safe='')}")

    def import_feedback(self, dataset: str) -> dict:
        return self._request("POST", f"/api/v1/datasets/{quote(dataset, safe='')}/feedback", json={})

    def check_ready(self) -> str | None:
        """GET /api/v1/ready once, within seconds: None when ready, the server's reason when not yet.

        Raises Unreachable when nothing (or something other than the classifier) answers.
        """
        try:
            response = self.session.get(self.url + "/api/v1/ready", timeout=READY_TIMEOUT_S)
        except requests.RequestException as exc:
            raise Unreachable(self.url, connection_reason(exc)) from None
        if response.status_code not in (200, 503):
            raise Unreachable(self.url, f"GET /api/v1/ready answered HTTP {response.status_code}, not the classifier")
        try:
            response.json()
        except ValueError:
            raise Unreachable(self.url, "GET /api/v1/ready answered something other than JSON") from None
        return None if response.ok else ApiError.from_response(response).message

    def _request(self, method: str, path: str, **kwargs) -> dict:
        """One call with retries: overload up to max_tries for this call, unavailability while the run waits."""
        overloaded = 0
        for attempt in itertools.count(1):
            outcome = self._once(method, path, **kwargs)
            if not isinstance(outcome, ApiError):
                self.outage.ended()
                return outcome
            error = outcome
            if not error.transient:
                self.outage.ended()  # the server answered: it is there
                raise error
            delay = self.retry.delay(attempt, error.retry_after_s)
            if error.code in UNAVAILABLE_CODES:
                self.outage.failed(error)
                remaining = self.outage.remaining_s()
                if remaining <= 0:
                    waited = f"{self.retry.max_wait_s:g} s"
                    raise ServerGone(f"{self.url} has been unavailable for {waited} ({error.message})")
                delay = min(delay, remaining + 0.1)  # wake in time to give up promptly
            else:
                overloaded += 1
                if overloaded >= self.retry.max_tries:
                    raise error
            if self.stop.wait(delay):
                raise Cancelled
        raise AssertionError("unreachable")  # itertools.count never ends

    def _once(self, method: str, path: str, **kwargs) -> dict | ApiError:
        if self.stop.is_set():
            raise Cancelled
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            return ApiError(0, "connection_error", f"cannot reach {self.url}: {connection_reason(exc)}")
        if response.ok:
            return response.json()
        return ApiError.from_response(response)

"""The job and result messages that cross Redis between the API and the workers."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field, fields

import numpy as np
import redis

from imgclf_contract import keys

SCHEMA_VERSION = "3"  # 2: jobs name the model version they need; 3: the tensor has its own key
RESULT_TOP_K = 10  # workers always answer the top 10; the API slices to top_k
TENSOR_MARGIN_MS = 5_000  # a job's tensor outlives its deadline by this much, then expires


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Job:
    """One preprocessed image waiting for inference by one model version.

    It crosses Redis in two parts: the stream entry (``to_fields``, small) and the tensor under
    ``keys.tensor(job_id)``, which expires ``TENSOR_MARGIN_MS`` after the deadline (no worker
    runs a job past it) and is deleted once the job is answered."""

    job_id: str
    request_id: str
    deadline_ms: int  # wall clock; a worker skips the job after this
    model: str
    version: str
    tensor: bytes  # (size, size, 3) uint8, C order, size: the model's input size
    head: str = ""  # "name:version" of a custom head to apply to the embedding; empty: the model's own classes
    embed: bool = False  # answer the pooled embedding too (dataset uploads, custom-model predictions)

    @property
    def tensor_key(self) -> str:
        return keys.tensor(self.job_id)

    def tensor_ttl_ms(self, at_ms: int | None = None) -> int:
        return max(self.deadline_ms - (now_ms() if at_ms is None else at_ms), 0) + TENSOR_MARGIN_MS

    def to_fields(self) -> dict[str, str]:
        """The stream entry: everything but the tensor."""
        return {
            "v": SCHEMA_VERSION,
            "job_id": self.job_id,
            "request_id": self.request_id,
            "deadline_ms": str(self.deadline_ms),
            "model": self.model,
            "version": self.version,
            "head": self.head,
            "embed": "1" if self.embed else "0",
        }

    def add_to(self, pipe: redis.client.Pipeline) -> None:
        """Queue the job with no admission check (tests, benchmarks); the API goes through its script."""
        pipe.set(self.tensor_key, self.tensor, px=self.tensor_ttl_ms())
        pipe.xadd(keys.jobs(self.model, self.version), self.to_fields())

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes], tensor: bytes) -> Job:
        """Decode a stream entry with its tensor; raises ValueError for anything malformed."""
        try:
            if fields[b"v"].decode() != SCHEMA_VERSION:
                raise ValueError(f"job schema {fields[b'v']!r} is not {SCHEMA_VERSION}")
            job = cls(
                job_id=fields[b"job_id"].decode(),
                request_id=fields[b"request_id"].decode(),
                deadline_ms=int(fields[b"deadline_ms"]),
                model=fields[b"model"].decode(),
                version=fields[b"version"].decode(),
                tensor=tensor,
                head=fields.get(b"head", b"").decode(),
                embed=fields.get(b"embed", b"0") == b"1",
            )
        except (KeyError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed job: {exc}") from None
        return job

    def array(self, size: int) -> np.ndarray:
        """The tensor for a model taking size x size; ValueError if it was made for another size."""
        if len(self.tensor) != size * size * 3:
            raise ValueError(f"tensor has {len(self.tensor)} bytes, expected {size * size * 3} ({size}x{size}x3)")
        return np.frombuffer(self.tensor, dtype=np.uint8).reshape(size, size, 3)

    def expired(self, at_ms: int | None = None) -> bool:
        return (now_ms() if at_ms is None else at_ms) > self.deadline_ms


@dataclass(frozen=True)
class Result:
    """A worker's answer to one job."""

    job_id: str
    model_name: str
    model_version: str
    backend: str
    worker_id: str
    batch_id: str
    batch_size: int
    inference_ms: float
    deliveries: int = 1  # > 1: the job was re-claimed from a worker that died
    top: list[tuple[int, float]] = field(default_factory=list)  # (class index, probability)
    error: str | None = None
    embedding: str | None = None  # base64 of float32 bytes, when the job asked for it

    def embedding_array(self) -> np.ndarray | None:
        return None if self.embedding is None else decode_vector(self.embedding)

    def to_json(self) -> str:
        """The instance's own dict: asdict() deep-copies every (index, probability) pair, 60 µs per
        top-10 answer against 9 here, paid for every image."""
        return json.dumps({"v": SCHEMA_VERSION, **vars(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Result:
        """Decode an answer; fields a newer worker added are ignored, so upgrades can roll."""
        data = json.loads(raw)
        data = {k: v for k, v in data.items() if k in _RESULT_FIELDS}
        data["top"] = [(int(i), float(p)) for i, p in data.get("top", [])]
        return cls(**data)


_RESULT_FIELDS = frozenset(f.name for f in fields(Result))


def encode_vector(vector: np.ndarray) -> str:
    """A float32 vector as base64 text (what a JSON message can carry exactly)."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode()


def decode_vector(text: str | bytes) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")

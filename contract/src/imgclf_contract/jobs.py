"""The job and result messages that cross Redis between the API and the workers."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from imgclf_contract.preprocess import INPUT_SIZE

SCHEMA_VERSION = "1"
TENSOR_SHAPE = (INPUT_SIZE, INPUT_SIZE, 3)
TENSOR_BYTES = INPUT_SIZE * INPUT_SIZE * 3
RESULT_TOP_K = 10  # workers always answer the top 10; the API slices to top_k


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Job:
    """One preprocessed image waiting for inference."""

    job_id: str
    request_id: str
    deadline_ms: int  # wall clock; a worker skips the job after this
    tensor: bytes  # TENSOR_SHAPE uint8, C order

    def to_fields(self) -> dict[str, bytes | str]:
        return {
            "v": SCHEMA_VERSION,
            "job_id": self.job_id,
            "request_id": self.request_id,
            "deadline_ms": str(self.deadline_ms),
            "tensor": self.tensor,
        }

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Job:
        """Decode a stream entry; raises ValueError for anything malformed."""
        try:
            if fields[b"v"].decode() != SCHEMA_VERSION:
                raise ValueError(f"job schema {fields[b'v']!r} is not {SCHEMA_VERSION}")
            job = cls(
                job_id=fields[b"job_id"].decode(),
                request_id=fields[b"request_id"].decode(),
                deadline_ms=int(fields[b"deadline_ms"]),
                tensor=fields[b"tensor"],
            )
        except (KeyError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed job: {exc}") from None
        if len(job.tensor) != TENSOR_BYTES:
            raise ValueError(f"tensor has {len(job.tensor)} bytes, expected {TENSOR_BYTES}")
        return job

    def array(self) -> np.ndarray:
        return np.frombuffer(self.tensor, dtype=np.uint8).reshape(TENSOR_SHAPE)

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

    def to_json(self) -> str:
        return json.dumps({"v": SCHEMA_VERSION, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Result:
        """Decode an answer; fields a newer worker added are ignored, so upgrades can roll."""
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["top"] = [(int(i), float(p)) for i, p in data.get("top", [])]
        return cls(**data)

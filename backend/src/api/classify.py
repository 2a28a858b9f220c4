"""One upload -> top-k answer: validate, preprocess, cache, queue, remember.

Shared by POST /api/v1/predictions and the compatibility route POST /predict.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from flask import g, request
from werkzeug.datastructures import FileStorage

from api import metrics
from api.queue import timeout_error
from api.services import services
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.jobs import Result, now_ms
from imgclf_contract.model_record import ModelRecord
from imgclf_contract.preprocess import ImageHeader, Preprocessed, preprocess, read_header

STORED_TOP = 5  # what a prediction record keeps for feedback


@dataclass(frozen=True)
class Answer:
    prediction_id: str
    model_name: str
    model_version: str
    backend: str | None
    predictions: list[dict]
    cached: bool
    timings_ms: dict[str, float]
    batch: dict | None
    image: dict

    def body(self, top_k: int) -> dict:
        return {
            "id": self.prediction_id,
            "model": {"name": self.model_name, "version": self.model_version, "backend": self.backend},
            "predictions": self.predictions[:top_k],
            "cached": self.cached,
            "timings_ms": self.timings_ms,
            "batch": self.batch,
            "image": self.image,
        }


@dataclass(frozen=True)
class _Inference:
    """What answered: the model, its top list, and how long the job waited and ran."""

    name: str
    version: str
    top: list[tuple[int, float]]
    backend: str | None = None  # None: answered from the cache
    batch: dict | None = None
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    embedding: str | None = None  # base64 float32, when asked for


HeaderT = TypeVar("HeaderT", bound=ImageHeader, covariant=True)  # frozen: read-only


@dataclass(frozen=True)
class _Decoded(Generic[HeaderT]):
    image: HeaderT  # Preprocessed, or only the ImageHeader for a cache hit
    slot_wait_ms: float  # waiting for a decode slot
    decode_ms: float


def human_size(size: int) -> str:
    """Bytes in binary units as people read them ("10 MB", "1.5 KB"); frontend/js/format.js formats alike."""
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KB"
    for bigger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{int(value + 0.5) if value >= 100 or value.is_integer() else f'{value:.1f}'} {unit}"


def read_upload(file: FileStorage) -> bytes:
    """The file's bytes, refusing one byte over MAX_UPLOAD_BYTES (413). The part is a BytesIO
    (``forms.InMemoryUploads``) whose getvalue() hands over its buffer without a copy."""
    limit = services().settings.max_upload_bytes
    data = file.stream.getvalue()
    if len(data) > limit:
        raise ServiceError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The file is larger than the upload limit of {human_size(limit)}.",
            {"max_upload_bytes": limit},
        )
    return data


def _labelled(name: str, version: str, top: list[tuple[int, float]]) -> list[dict]:
    record = services().workers.model_record(name, version)
    if record is None:
        raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, f"Model {name} {version} has not been published yet.")
    return [
        {"label": record.labels[i]["name"], "class_index": i, "wnid": record.labels[i]["wnid"], "score": round(p, 6)}
        for i, p in top
    ]


def _batch_info(result: Result) -> dict:
    return {
        "id": result.batch_id,
        "size": result.batch_size,
        "worker_id": result.worker_id,
        "deliveries": result.deliveries,
    }


def _from_worker(record: ModelRecord, tensor: bytes, deadline_ms: int, embed: bool = False) -> _Inference:
    waited = time.perf_counter()
    result = services().queue.run(g.request_id, record, tensor, deadline_ms, embed=embed)
    wait_ms = (time.perf_counter() - waited) * 1000
    if result.error:
        raise ServiceError(ErrorCode.INTERNAL_ERROR, "The model failed on this image; the failure has been logged.")
    return _Inference(
        name=result.model_name,
        version=result.model_version,
        top=result.top,
        backend=result.backend,
        batch=_batch_info(result),
        queue_ms=max(wait_ms - result.inference_ms, 0.0),
        inference_ms=result.inference_ms,
        embedding=result.embedding,
    )


def _decode(data: bytes, deadline_ms: int, size: int) -> _Decoded[Preprocessed]:
    """Decoding is CPU-bound: more at once than cores only multiplies the memory held by
    half-decoded images and slows every request; the rest wait their turn here, but never
    past the request's deadline, and a request whose client has gone is dropped unread."""
    s = services()
    asked = time.perf_counter()
    if not s.decode_slots.acquire(timeout_s=max(0.0, (deadline_ms - now_ms()) / 1000)):
        raise timeout_error(s.settings.request_timeout_s)
    try:
        _stop_if_client_gone()
        began = time.perf_counter()
        image = preprocess(data, s.settings.max_pixels, max_decode_bytes=s.settings.max_decode_bytes, size=size)
    finally:
        s.decode_slots.release()
    done = time.perf_counter()
    metrics.PREPROCESS_SECONDS.observe(done - began)
    return _Decoded(image, slot_wait_ms=(began - asked) * 1000, decode_ms=(done - began) * 1000)


def client_gone() -> bool:
    """True when the peer closed the connection (nginx does when its client gives up): a peek
    at the socket reads end-of-file. False when unsure (no socket, or bytes still waiting)."""
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset by the peer
        return True


def _stop_if_client_gone() -> None:
    if client_gone():
        raise ServiceError(ErrorCode.CLIENT_CLOSED_REQUEST, "The client closed the connection; nothing was done.")


def _check_deadline(deadline_ms: int) -> None:
    """No job for a worker once nobody can receive its answer: past the deadline, or gone."""
    if now_ms() >= deadline_ms:
        raise timeout_error(services().settings.request_timeout_s)
    _stop_if_client_gone()


def _cached_or_admitted(record: ModelRecord, sha256: str) -> _Inference | None:
    """This model version's cached answer for the upload (the cache key carries name and version),
    or None once admission has found a live worker and room in its queue (refusing an overload
    before anything is decoded). Where the cache shares the queue's Redis, one script does both."""
    s = services()
    name, version = record.name, record.version
    hit = None
    try:
        if s.results.enabled and s.results.client is s.queue.client:
            raw = s.queue.admit(record, cache_key=s.results.key(sha256, name, version))
            hit = s.results.parse(raw, name, version) if raw is not None else None
        else:
            hit = s.results.get(sha256, name, version)
            if hit is None:
                s.queue.admit(record)
    finally:
        metrics.CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()
    return _Inference(hit.model_name, hit.model_version, hit.top) if hit else None


def _header_only(data: bytes) -> _Decoded[ImageHeader]:
    """What a cache hit answers about the image, from its header alone: no decode slot, no
    decoding, no tensor (format and size as the photo is displayed, as preprocess() gives them)."""
    began = time.perf_counter()
    _, header = read_header(data, services().settings.max_pixels)
    return _Decoded(header, slot_wait_ms=0.0, decode_ms=(time.perf_counter() - began) * 1000)


def _remember(prediction_id: str, record: dict, data: bytes, fresh: _Inference | None) -> None:
    """The prediction (for feedback) and a fresh answer for the cache: one pipeline where store
    and cache share a Redis, else one each (none for the cache when there is nothing to put)."""
    s = services()
    store = s.predictions.client.pipeline(transaction=False)
    cache = store if s.results.client is s.predictions.client else s.results.client.pipeline(transaction=False)
    if fresh is not None:
        s.results.put(cache, record["sha256"], fresh.name, fresh.version, fresh.top)
    s.predictions.save(store, prediction_id, record, data if s.settings.keep_feedback_images else None)
    store.execute()
    if cache is not store:
        cache.execute()  # no round trip when empty


def classify(data: bytes, model: str | None = None) -> Answer:
    """Run the whole path for one upload with ``model`` (name or name:version; None: DEFAULT_MODEL).

    Raises ServiceError with the right status.
    """
    s = services()
    started = time.perf_counter()
    deadline_ms = now_ms() + int(s.settings.request_timeout_s * 1000)
    record = s.models.resolve(model)  # 400/404/503 before anything is decoded
    sha256 = hashlib.sha256(data).hexdigest()
    inference = _cached_or_admitted(record, sha256)
    cached = inference is not None
    decoded: _Decoded[ImageHeader]
    if inference is None:  # a custom model's embedding is kept with the prediction: feedback can train on it
        decoded = preprocessed = _decode(data, deadline_ms, record.input_size)
        _check_deadline(deadline_ms)
        inference = _from_worker(record, preprocessed.image.pixels, deadline_ms, embed=record.is_custom)
        metrics.QUEUE_SECONDS.observe(inference.queue_ms / 1000)
    else:
        decoded = _header_only(data)
    predictions = _labelled(inference.name, inference.version, inference.top)
    prediction_id = uuid.uuid4().hex
    stored = {
        "sha256": sha256,
        "model_name": inference.name,
        "model_version": inference.version,
        "predictions": predictions[:STORED_TOP],
        **({"embedding": inference.embedding} if inference.embedding else {}),
    }
    _remember(prediction_id, stored, data, None if cached else inference)
    timings = {
        "preprocess": decoded.decode_ms,
        "queue": decoded.slot_wait_ms + inference.queue_ms,
        "inference": inference.inference_ms,
        "total": (time.perf_counter() - started) * 1000,
    }
    return Answer(
        prediction_id=prediction_id,
        model_name=inference.name,
        model_version=inference.version,
        backend=inference.backend,
        predictions=predictions,
        cached=cached,
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        batch=inference.batch,
        image={
            "sha256": sha256,
            "format": decoded.image.format,
            "width": decoded.image.width,
            "height": decoded.image.height,
            "bytes": len(data),
        },
    )


@dataclass(frozen=True)
class Embedded:
    sha256: str
    embedding: str  # base64 float32


def embed_upload(data: bytes, base: ModelRecord) -> Embedded:
    """The upload's pooled embedding from ``base``, through the same admission, preprocessing and queue."""
    s = services()
    deadline_ms = now_ms() + int(s.settings.request_timeout_s * 1000)
    s.queue.admit(base)
    decoded = _decode(data, deadline_ms, base.input_size)
    _check_deadline(deadline_ms)
    inference = _from_worker(base, decoded.image.pixels, deadline_ms, embed=True)
    if inference.embedding is None:
        raise ServiceError(ErrorCode.INTERNAL_ERROR, "The worker answered without an embedding; upgrade the workers.")
    return Embedded(hashlib.sha256(data).hexdigest(), inference.embedding)

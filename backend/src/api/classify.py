"""One upload -> top-k answer: validate, preprocess, cache, queue, remember.

Shared by POST /api/v1/predictions and the compatibility route POST /predict.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass

from flask import current_app, g
from werkzeug.datastructures import FileStorage

from api import metrics
from api.store import get_store
from ml_worker.contract.config import Settings
from ml_worker.contract.errors import ErrorCode, ServiceError
from ml_worker.contract.jobs import now_ms
from ml_worker.contract.model_record import ModelRecord
from ml_worker.contract.preprocess import Preprocessed, preprocess


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


def settings() -> Settings:
    return current_app.config["SETTINGS"]


def read_upload(file: FileStorage) -> bytes:
    """The file's bytes, refusing one byte over MAX_UPLOAD_BYTES (413)."""
    limit = settings().max_upload_bytes
    data = file.stream.read(limit + 1)
    if len(data) > limit:
        raise ServiceError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The file is over the upload limit of {limit} bytes.",
            {"max_upload_bytes": limit},
        )
    return data


def _labelled(name: str, version: str, top: list) -> list[dict]:
    record = get_store().model_record(name, version)
    if record is None:
        raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, f"Model {name} {version} has not been published yet.")
    return [
        {"label": record.labels[i]["name"], "class_index": i, "wnid": record.labels[i]["wnid"], "score": round(p, 6)}
        for i, p in top
    ]


@dataclass(frozen=True)
class _Inference:
    """What answered: the model, its top list, and how long the job waited and ran."""

    name: str
    version: str
    top: list
    backend: str | None = None
    batch: dict | None = None
    queue_ms: float = 0.0
    inference_ms: float = 0.0


def _from_worker(record: ModelRecord, tensor: bytes, deadline_ms: int) -> _Inference:
    queue = current_app.extensions["queue"]
    job = queue.submit(g.request_id, record, tensor, deadline_ms)
    waited = time.perf_counter()
    result = queue.wait(job)
    wait_ms = (time.perf_counter() - waited) * 1000
    if result.error:
        raise ServiceError(ErrorCode.INTERNAL_ERROR, "The model failed on this image; the failure has been logged.")
    batch = {"id": result.batch_id, "size": result.batch_size, "worker_id": result.worker_id,
             "deliveries": result.deliveries}  # fmt: skip
    return _Inference(result.model_name, result.model_version, result.top, result.backend, batch,
                      max(wait_ms - result.inference_ms, 0.0), result.inference_ms)  # fmt: skip


def _decode(data: bytes, max_pixels: int, size: int) -> tuple[Preprocessed, float, float]:
    """(image, ms waiting for a decode slot, ms decoding).

    Decoding is CPU-bound: more at once than cores only multiplies the memory held by
    half-decoded images and slows every request; the rest wait their turn here.
    """
    asked = time.perf_counter()
    with current_app.extensions["decode_slots"]:
        began = time.perf_counter()
        image = preprocess(data, max_pixels, size=size)
    done = time.perf_counter()
    metrics.PREPROCESS_SECONDS.observe(done - began)
    return image, (began - asked) * 1000, (done - began) * 1000


def classify(data: bytes, model: str | None = None) -> Answer:
    """Run the whole path for one upload with ``model`` (name or name:version; None: DEFAULT_MODEL).

    Raises ServiceError with the right status.
    """
    s, store = settings(), get_store()
    started = time.perf_counter()
    deadline_ms = now_ms() + int(s.request_timeout_s * 1000)
    record = store.catalogue.resolve(model)  # 400/404/503 before reading anything else
    sha256 = hashlib.sha256(data).hexdigest()
    cached = store.cached_top(record.name, record.version, sha256)
    metrics.CACHE_LOOKUPS.labels("hit" if cached else "miss").inc()
    if not cached:
        current_app.extensions["queue"].admit(record)  # refuse an overload before spending a decode on it
    image, slot_ms, preprocess_ms = _decode(data, s.max_pixels, record.input_size)
    if cached:
        inference = _Inference(record.name, record.version, cached)
    else:
        inference = _from_worker(record, image.tensor.tobytes(), deadline_ms)
        metrics.QUEUE_SECONDS.observe(inference.queue_ms / 1000)
    predictions = _labelled(inference.name, inference.version, inference.top)
    prediction_id = uuid.uuid4().hex
    stored = {"sha256": sha256, "model_name": inference.name, "model_version": inference.version,
              "predictions": predictions[:5]}  # fmt: skip
    store.save_prediction(prediction_id, stored, [] if cached else inference.top,
                          data if s.keep_feedback_images else None)  # fmt: skip
    timings = {"preprocess": preprocess_ms, "queue": slot_ms + inference.queue_ms,
               "inference": inference.inference_ms, "total": (time.perf_counter() - started) * 1000}  # fmt: skip
    image_info = {"sha256": sha256, "format": image.format, "width": image.width,
                  "height": image.height, "bytes": len(data)}  # fmt: skip
    return Answer(prediction_id, inference.name, inference.version, inference.backend, predictions,
                  bool(cached), {k: round(v, 3) for k, v in timings.items()}, inference.batch, image_info)  # fmt: skip

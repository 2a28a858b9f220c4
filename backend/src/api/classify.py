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
from ml_worker.contract.preprocess import preprocess


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


def classify(data: bytes) -> Answer:
    """Run the whole path for one upload; raises ServiceError with the right status."""
    s, store = settings(), get_store()
    started = time.perf_counter()
    deadline_ms = now_ms() + int(s.request_timeout_s * 1000)
    sha256 = hashlib.sha256(data).hexdigest()
    queue = current_app.extensions["queue"]
    cached = store.cached_top(sha256)
    if not cached:
        queue.admit()  # refuse an overload before spending a decode on it
    # Decoding is CPU-bound: more at once than cores only multiplies the memory held by
    # half-decoded images and makes every request slower; the rest wait their turn here.
    with current_app.extensions["decode_slots"]:
        image = preprocess(data, s.max_pixels)
    preprocess_ms = (time.perf_counter() - started) * 1000
    metrics.PREPROCESS_SECONDS.observe(preprocess_ms / 1000)
    image_info = {"sha256": sha256, "format": image.format, "width": image.width,
                  "height": image.height, "bytes": len(data)}  # fmt: skip
    metrics.CACHE_LOOKUPS.labels("hit" if cached else "miss").inc()
    if cached:
        name, version, top = cached
        backend, batch, queue_ms, inference_ms = None, None, 0.0, 0.0
    else:
        job = queue.submit(g.request_id, image.tensor.tobytes(), deadline_ms)
        waited = time.perf_counter()
        result = queue.wait(job)
        wait_ms = (time.perf_counter() - waited) * 1000
        name, version, top = result.model_name, result.model_version, result.top
        backend = result.backend
        batch = {"id": result.batch_id, "size": result.batch_size, "worker_id": result.worker_id,
                 "deliveries": result.deliveries}  # fmt: skip
        inference_ms = result.inference_ms
        queue_ms = max(wait_ms - inference_ms, 0.0)
        metrics.QUEUE_SECONDS.observe(queue_ms / 1000)
    predictions = _labelled(name, version, top)
    prediction_id = uuid.uuid4().hex
    stored = {"sha256": sha256, "model_name": name, "model_version": version, "predictions": predictions[:5]}
    store.save_prediction(prediction_id, stored, top if not cached else [], data if s.keep_feedback_images else None)
    timings = {"preprocess": preprocess_ms, "queue": queue_ms, "inference": inference_ms,
               "total": (time.perf_counter() - started) * 1000}  # fmt: skip
    return Answer(prediction_id, name, version, backend, predictions, bool(cached),
                  {k: round(v, 3) for k, v in timings.items()}, batch, image_info)  # fmt: skip

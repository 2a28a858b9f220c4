"""What is served and whether it is up: models, labels, health, readiness, API docs."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify, send_from_directory

from api import openapi
from api.schemas import HealthSchema, LabelsSchema, ModelInfoSchema, ReadySchema
from api.services import services
from api.store.workers import CurrentModel
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.jobs import RESULT_TOP_K
from imgclf_contract.preprocess import (
    ACCEPTED_FORMATS,
    ACCEPTED_LABEL,
    ACCEPTED_MIME_TYPES,
    MIN_SIDE,
)

bp = Blueprint("meta", __name__, url_prefix="/api/v1")


def _current() -> CurrentModel:
    current = services().workers.current_model()
    if current is None:
        raise ServiceError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "No inference worker is running, so no model is being served right now.",
            {"missing": "workers"},
        )
    return current


@bp.get("/models")
def models():
    current = _current()
    record = current.record
    s = services().settings
    body = {
        "name": record.name,
        "version": record.version,
        "backend": current.backend,
        "input_size": record.input_size,
        "preprocessing": record.preprocessing,
        "num_classes": record.num_classes,
        "workers": current.workers,
        "limits": {
            "max_upload_bytes": s.max_upload_bytes,
            "max_pixels": s.max_pixels,
            "min_side": MIN_SIDE,
            "max_top_k": RESULT_TOP_K,
            "accepted_formats": list(ACCEPTED_FORMATS),
            "accepted_mime_types": list(ACCEPTED_MIME_TYPES),
            "accepted_label": ACCEPTED_LABEL,
        },
    }
    return ModelInfoSchema().dump(body), 200


@bp.get("/labels")
def labels():
    record = _current().record
    body = {"model_version": record.version, "labels": record.labels}
    response = jsonify(LabelsSchema().dump(body))
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


@bp.get("/health")
def health():
    return HealthSchema().dump({"status": "ok"}), 200


@bp.get("/ready")
def ready():
    """200 only when Redis answers and a worker with the model loaded has beaten recently."""
    s = services()
    missing: list[str] = []
    workers = 0
    try:
        for client in s.redis_pools:
            client.ping()
        workers = len(s.workers.live(fresh=True))  # a worker beats only once its model is loaded
    except redis.RedisError:
        missing.append("redis")
    if "redis" not in missing and workers == 0:
        missing.append("workers")
    status = "not_ready" if missing else "ready"
    body = ReadySchema().dump(
        {"status": status, "redis": "redis" not in missing, "workers": workers, "missing": missing}
    )
    if missing:
        raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, f"Not ready: {' and '.join(missing)} unavailable.", body)
    return body, 200


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi.spec())


@bp.get("/docs")
def docs() -> Response:
    return send_from_directory(openapi.DOCS_DIR, "index.html")


@bp.get("/docs/<path:filename>")
def docs_assets(filename: str) -> Response:
    return openapi.docs_asset(filename)

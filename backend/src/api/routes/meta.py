"""What is served and whether it is up: models, labels, health, readiness, API docs."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify, request, send_from_directory

from api import openapi
from api.forms import load_json
from api.schemas import HealthSchema, LabelsSchema, ModelInfoSchema, ModelSummarySchema, ReadySchema, RollbackSchema
from api.services import services
from api.store.models import ModelEntry
from imgclf_contract import keys
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.jobs import RESULT_TOP_K
from imgclf_contract.preprocess import (
    ACCEPTED_FORMATS,
    ACCEPTED_LABEL,
    ACCEPTED_MIME_TYPES,
    MIN_SIDE,
)

bp = Blueprint("meta", __name__, url_prefix="/api/v1")


def _summary(entry: ModelEntry) -> dict:
    record = entry.latest.record
    return {
        "name": entry.name,
        "default": entry.default,
        "versions": [v.record.version for v in entry.versions],
        "latest": record.version,
        "available": bool(entry.workers),
        "input_size": record.input_size,
        "preprocessing": record.preprocessing,
        "num_labels": len(record.labels),
        "embedding_size": record.embedding_size,
        "precision": record.precision,
        "published_top1": record.published_top1,
        "measured": record.measured,
        "workers": entry.workers,
        **(_custom(entry) if entry.custom else {}),
    }


def _custom(entry: ModelEntry) -> dict:
    """A custom model's base, labels and hold-out report (of the version that answers its name)."""
    answering = entry.answering()
    record = (answering or entry.latest).record
    return {
        "base": f"{record.base}:{record.base_version}",
        "pinned": entry.pinned or None,
        "labels": [label["name"] for label in record.labels],
        "report": record.report,
    }


def _limits() -> dict:
    s = services().settings
    return {
        "max_upload_bytes": s.max_upload_bytes,
        "max_pixels": s.max_pixels,
        "min_side": MIN_SIDE,
        "max_top_k": RESULT_TOP_K,
        "accepted_formats": list(ACCEPTED_FORMATS),
        "accepted_mime_types": list(ACCEPTED_MIME_TYPES),
        "accepted_label": ACCEPTED_LABEL,
    }


@bp.get("/models")
def models():
    """Every model; 503 while no worker serves the default one (what a request without `model` gets)."""
    s = services()
    default = s.models.resolve(None)
    serving = set(s.models.entry(default.name).answering().workers)
    backends = [w["backend"] for w in s.workers.live() if w["worker_id"] in serving]
    body = {
        "default": default.name,
        "models": [_summary(entry) for entry in s.models.entries()],
        "name": default.name,
        "version": default.version,
        "backend": backends[0] if backends else "unknown",
        "input_size": default.input_size,
        "preprocessing": default.preprocessing,
        "num_classes": default.num_classes,
        "workers": len(serving),
        "limits": _limits(),
    }
    return ModelInfoSchema().dump(body), 200


@bp.get("/models/<name>")
def model(name: str):
    return ModelSummarySchema().dump(_summary(services().models.entry(name))), 200


def _labels(entry: ModelEntry) -> Response:
    record = entry.latest.record
    body = {"model": record.name, "model_version": record.version, "labels": record.labels}
    response = jsonify(LabelsSchema().dump(body))
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


def _custom_entry(name: str) -> ModelEntry:
    entry = services().models.entry(name, fresh=True)
    if not entry.custom:
        raise ServiceError(
            ErrorCode.INVALID_REQUEST,
            f"{name} is a built-in model; only custom models roll back or export here.",
            {"model": name},
        )
    return entry


def _version_of(entry: ModelEntry, version: str) -> str:
    versions = [v.record.version for v in entry.versions]
    if version not in versions:
        message = f"Model {entry.name} has no version {version}. Versions: {', '.join(versions)}."
        raise ServiceError(ErrorCode.NOT_FOUND, message, {"model": entry.name, "versions": versions})
    return version


@bp.post("/models/<name>/rollback")
def rollback(name: str):
    """Make ``version`` answer the bare name until the next successful training publishes a newer one."""
    entry = _custom_entry(name)
    version = _version_of(entry, load_json(RollbackSchema(), request)["version"])
    services().redis.set(keys.head_pin(name), version)
    return ModelSummarySchema().dump(_summary(services().models.entry(name, fresh=True))), 200


@bp.get("/models/<name>/export")
def export(name: str):
    """The standalone bundle (zip: fused .tflite, labels.txt, model_card.json) of a version (default: newest)."""
    entry = _custom_entry(name)
    version = _version_of(entry, request.args.get("version") or entry.latest.record.version)
    record = next(v.record for v in entry.versions if v.record.version == version)
    if not record.exportable:
        message = (
            f"{name}:{version} has no standalone export: its base {record.base} is an int8 variant. "
            f"Train on {record.base.removesuffix('_int8')} for a downloadable model."
        )
        raise ServiceError(ErrorCode.NOT_FOUND, message, {"model": name, "version": version, "base": record.base})
    data = services().redis.get(keys.export(name, version))
    if data is None:
        message = f"The export of {name}:{version} is still being built by the trainer; try again shortly."
        raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, message, {"model": name, "version": version}, retry_after_s=5)
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{version}.zip"'
    return response


@bp.get("/models/<name>/labels")
def model_labels(name: str):
    return _labels(services().models.entry(name))


@bp.get("/labels")
def labels():
    """The default model's labels (its newest published version)."""
    models = services().models
    return _labels(models.entry(models.default_model))


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

"""Datasets of labelled embeddings (/api/v1/datasets) and the trainings that turn them into models."""

from __future__ import annotations

import re

from flask import Blueprint, request

from api import datasets
from api.classify import read_upload
from api.forms import load_form, load_json, single_file
from api.schemas import (
    DatasetCreateSchema,
    DatasetImageFormSchema,
    DatasetImageSchema,
    DatasetImagesSchema,
    DatasetListSchema,
    DatasetSchema,
    FeedbackImportResultSchema,
    FeedbackImportSchema,
    RemovedSchema,
    TrainingRequestSchema,
    TrainingSchema,
)
from api.services import services
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.model_record import NAME_PATTERN

bp = Blueprint("datasets", __name__, url_prefix="/api/v1")
_dataset = DatasetSchema()
_training = TrainingSchema()


@bp.before_request
def _check_name() -> None:
    """A dataset name in a URL that could never exist is a 400, not a 404."""
    name = (request.view_args or {}).get("name")
    if name is not None and not re.fullmatch(NAME_PATTERN, name):
        raise ServiceError(
            ErrorCode.INVALID_REQUEST,
            f"{name[:80]!r} is not a dataset name (lower-case letters, "
            "digits, '_'; at most 64, starting with a letter).",
            {"field": "name"},
        )


@bp.post("/datasets")
def create_dataset():
    body = load_json(DatasetCreateSchema(), request)
    s = services()
    base = datasets.base_record(body["base_model"])
    created = s.datasets.create(body["name"], base.name, base.version)
    meta = datasets.existing(body["name"])
    if meta["base"] != base.name:
        raise ServiceError(
            ErrorCode.CONFLICT,
            f"Dataset {body['name']} exists with base model {meta['base']}.",
            {"dataset": body["name"], "base_model": meta["base"]},
        )
    return _dataset.dump(datasets.summary(meta)), 201 if created else 200


@bp.get("/datasets")
def list_datasets():
    metas = [m for n in services().datasets.names() if (m := services().datasets.meta(n))]
    return DatasetListSchema().dump({"datasets": [datasets.summary(m) for m in metas]}), 200


@bp.get("/datasets/<name>")
def get_dataset(name: str):
    return _dataset.dump(datasets.summary(datasets.existing(name))), 200


@bp.delete("/datasets/<name>")
def delete_dataset(name: str):
    datasets.existing(name)
    removed = len(services().datasets.labels_of(name))
    services().datasets.delete(name)
    return RemovedSchema().dump({"removed": removed}), 200


@bp.post("/datasets/<name>/images")
def add_image(name: str):
    datasets.existing(name)  # 404 before reading the upload
    upload = single_file(request, "image")
    form = load_form(DatasetImageFormSchema(), request.form)
    body = datasets.add_image(name, read_upload(upload), form["label"])
    return DatasetImageSchema().dump(body), 201 if body["created"] else 200


@bp.get("/datasets/<name>/images")
def list_images(name: str):
    datasets.existing(name)
    images = [{"sha256": sha, "label": label} for sha, label in sorted(services().datasets.labels_of(name).items())]
    return DatasetImagesSchema().dump({"images": images}), 200


@bp.delete("/datasets/<name>/images/<sha256>")
def remove_image(name: str, sha256: str):
    datasets.existing(name)
    if not services().datasets.remove(name, [sha256]):
        raise ServiceError(ErrorCode.NOT_FOUND, f"Dataset {name} has no image {sha256[:64]}.", {"sha256": sha256[:64]})
    return RemovedSchema().dump({"removed": 1}), 200


@bp.delete("/datasets/<name>/labels/<path:label>")
def remove_label(name: str, label: str):
    datasets.existing(name)
    store = services().datasets
    shas = [sha for sha, lb in store.labels_of(name).items() if lb == label]
    if not shas:
        raise ServiceError(ErrorCode.NOT_FOUND, f"Dataset {name} has no label {label[:100]!r}.", {"label": label[:100]})
    return RemovedSchema().dump({"removed": store.remove(name, shas)}), 200


@bp.post("/datasets/<name>/feedback")
def import_feedback(name: str):
    body = load_json(FeedbackImportSchema(), request) if request.content_length else {"feedback_ids": None}
    return FeedbackImportResultSchema().dump(datasets.import_feedback(name, body["feedback_ids"])), 200


@bp.post("/trainings")
def start_training():
    body = load_json(TrainingRequestSchema(), request)
    training_id = datasets.start_training(body["dataset"], body["model"], body["holdout"])
    return _training.dump(services().trainings.get(training_id)), 202


@bp.get("/trainings/<training_id>")
def get_training(training_id: str):
    state = services().trainings.get(training_id[:64])
    if state is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "Unknown training id.", {"training_id": training_id[:64]})
    return _training.dump(state), 200

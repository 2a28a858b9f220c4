"""What the dataset and training routes do, apart from HTTP: limits, embeddings, feedback import."""

from __future__ import annotations

import base64
import hashlib

from api.classify import embed_upload
from api.services import services
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.jobs import decode_vector
from imgclf_contract.model_record import ModelRecord
from imgclf_contract.training import MAX_LABELS, trainability_problem


def existing(name: str) -> dict:
    """The dataset's facts, or a 404."""
    meta = services().datasets.meta(name)
    if meta is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"There is no dataset named {name!r}.", {"dataset": name})
    return meta


def summary(meta: dict) -> dict:
    counts = services().datasets.counts(meta["name"])
    return {
        "name": meta["name"],
        "base_model": meta["base"],
        "base_version": meta["base_version"],
        "created_at": meta["created_at"],
        "images": sum(counts.values()),
        "labels": counts,
        "max_images": services().settings.max_dataset_images,
    }


def base_record(name: str | None) -> ModelRecord:
    """The built-in model a dataset's embeddings come from (404 unknown, 400 a custom model, 503 unserved)."""
    record = services().models.resolve(name)
    if record.is_custom:
        raise ServiceError(
            ErrorCode.INVALID_REQUEST,
            f"{record.name} is a custom model; name a built-in base model.",
            {"field": "base_model"},
        )
    return record


def check_room(name: str, label: str, counts: dict[str, int], adding: bool) -> None:
    limit = services().settings.max_dataset_images
    if adding and sum(counts.values()) >= limit:
        raise ServiceError(
            ErrorCode.VALIDATION_FAILED,
            f"Dataset {name} is full ({limit} images, MAX_DATASET_IMAGES).",
            {"max_images": limit},
        )
    if label not in counts and len(counts) >= MAX_LABELS:
        raise ServiceError(
            ErrorCode.VALIDATION_FAILED, f"A dataset has at most {MAX_LABELS} labels.", {"max_labels": MAX_LABELS}
        )


def add_image(name: str, data: bytes, label: str) -> dict:
    """Store the upload's embedding under its sha256; re-sending it only updates the label (idempotent)."""
    s = services()
    meta = existing(name)
    counts = s.datasets.counts(name)
    base = base_record(f"{meta['base']}:{meta['base_version']}")
    sha256 = hashlib.sha256(data).hexdigest()
    known = s.datasets.label_of(name, sha256)
    check_room(name, label, counts, adding=known is None)
    if known is not None:
        s.datasets.relabel(name, sha256, label)
        return {"sha256": sha256, "label": label, "created": False}
    embedded = embed_upload(data, base)
    kept = data if s.settings.keep_dataset_images else None
    s.datasets.add(name, sha256, label, base64.b64decode(embedded.embedding), kept)
    return {"sha256": sha256, "label": label, "created": True}


def start_training(dataset: str, model: str | None, holdout: float) -> str:
    """Queue a training of ``model`` (default: the dataset's name) on the dataset's embeddings."""
    s = services()
    existing(dataset)
    model = model or dataset
    if any(e.name == model and not e.custom for e in s.models.entries(fresh=True)):
        raise ServiceError(ErrorCode.CONFLICT, f"{model} is a built-in model; choose another name.", {"model": model})
    counts = s.datasets.counts(dataset)
    if problem := trainability_problem(counts):
        raise ServiceError(ErrorCode.VALIDATION_FAILED, problem, {"labels": counts})
    training_id = s.trainings.start(model, dataset, holdout, counts)
    if training_id is None:
        running = s.trainings.running_for(model)
        raise ServiceError(
            ErrorCode.CONFLICT,
            f"A training of {model} is already running ({running}).",
            {"model": model, "training_id": running},
        )
    return training_id


def import_feedback(name: str, feedback_ids: list[str] | None) -> dict:
    """Add to dataset ``name`` every feedback (or those listed) naming the right class of a prediction
    made by the model ``name``; the embedding kept with the prediction is enough, no image needed."""
    s = services()
    existing(name)
    records = s.feedback.all() if feedback_ids is None else (s.feedback.get(i) for i in feedback_ids)
    held = s.datasets.labels_of(name)
    counts = s.datasets.counts(name)
    added, skipped = (
        0,
        dict.fromkeys(("not_found", "other_model", "no_expected_label", "no_embedding", "already_there"), 0),
    )
    for record in records:
        reason = _unusable(record, name, held)
        if reason:
            skipped[reason] += 1
            continue
        prediction, label = record["prediction"], record["expected_label"]
        check_room(name, label, counts, adding=prediction["sha256"] not in held)
        s.datasets.add(name, prediction["sha256"], label, decode_vector(prediction["embedding"]).tobytes(), None)
        held[prediction["sha256"]] = label
        counts[label] = counts.get(label, 0) + 1
        added += 1
    return {"added": added, "skipped": skipped}


def _unusable(record: dict | None, name: str, held: dict[str, str]) -> str | None:
    if record is None:
        return "not_found"
    prediction = record.get("prediction") or {}
    if prediction.get("model_name") != name:
        return "other_model"
    if not record.get("expected_label"):
        return "no_expected_label"
    if not prediction.get("embedding"):
        return "no_embedding"
    if held.get(prediction["sha256"]) == record["expected_label"]:
        return "already_there"
    return None

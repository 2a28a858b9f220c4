"""Feedback on predictions: stored durably so it can become a training set."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Blueprint, request
from marshmallow import ValidationError

from api.routes.uploads import first_message
from api.schemas import FeedbackRecordSchema, FeedbackRequestSchema
from api.store import get_store
from ml_worker.contract import keys
from ml_worker.contract.errors import ErrorCode, ServiceError

bp = Blueprint("feedback", __name__, url_prefix="/api/v1")
_request = FeedbackRequestSchema()
_record = FeedbackRecordSchema()
DEFAULT_NUM_CLASSES = 1000  # when the prediction's model record is gone


def new_feedback(prediction_id: str | None, prediction: dict | None, correct: bool | None,
                 expected: int | None, comment: str | None) -> dict:  # fmt: skip
    """A feedback record; the prediction's sha256, model and top-5 travel with it."""
    store = get_store()
    label = None
    if expected is not None and prediction:
        record = store.model_record(prediction["model_name"], prediction["model_version"])
        label = record.labels[expected]["name"] if record else None
    image_key = keys.image(prediction["sha256"]) if prediction and store.settings.keep_feedback_images else None
    feedback = {
        "id": uuid.uuid4().hex,
        "prediction_id": prediction_id,
        "correct": correct,
        "expected_class_index": expected,
        "expected_label": label,
        "comment": comment,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "prediction": prediction,
        "image_key": image_key,
    }
    store.save_feedback(feedback)
    return feedback


@bp.post("/feedback")
def create_feedback():
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ServiceError(ErrorCode.INVALID_REQUEST, "Send a JSON object (Content-Type: application/json).")
    try:
        data = _request.load(payload)
    except ValidationError as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, first_message(exc), {"fields": exc.messages}) from None
    expected = data["expected_class_index"]
    prediction = get_store().prediction(data["prediction_id"])
    if prediction is None:
        raise ServiceError(
            ErrorCode.NOT_FOUND,
            "Unknown prediction id (predictions are remembered for PREDICTION_TTL_S).",
            {"prediction_id": data["prediction_id"]},
        )
    record = get_store().model_record(prediction["model_name"], prediction["model_version"])
    num_classes = record.num_classes if record else DEFAULT_NUM_CLASSES
    if expected is not None and not 0 <= expected < num_classes:
        raise ServiceError(
            ErrorCode.VALIDATION_FAILED,
            f"expected_class_index must be between 0 and {num_classes - 1} (got {expected}).",
            {"field": "expected_class_index"},
        )
    record = new_feedback(data["prediction_id"], prediction, data["correct"], expected, data["comment"])
    return _record.dump(record), 201


@bp.get("/feedback/<feedback_id>")
def get_feedback(feedback_id: str):
    record = get_store().feedback(feedback_id)
    if record is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "Unknown feedback id.", {"feedback_id": feedback_id})
    return _record.dump(record), 200

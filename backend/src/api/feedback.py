"""Feedback on a prediction, as a durable record that can become a training set.

Shared by POST /api/v1/feedback and the compatibility route POST /feedback.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from api.services import services
from imgclf_contract import keys
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.model_record import IMAGENET_CLASSES


@dataclass(frozen=True)
class Verdict:
    """What a person says about a prediction; every part may be missing (a free-text report)."""

    prediction_id: str | None = None
    correct: bool | None = None
    expected_class_index: int | None = None
    comment: str | None = None


def known_prediction(prediction_id: str) -> dict:
    """The remembered prediction, or 404."""
    prediction = services().predictions.get(prediction_id)
    if prediction is None:
        raise ServiceError(
            ErrorCode.NOT_FOUND,
            "Unknown prediction id (predictions are remembered for PREDICTION_TTL_S).",
            {"prediction_id": prediction_id},
        )
    return prediction


def check_expected_class(prediction: dict, expected: int | None) -> None:
    """422 unless ``expected`` is a class of the model that made the prediction."""
    record = services().workers.model_record(prediction["model_name"], prediction["model_version"])
    num_classes = record.num_classes if record else IMAGENET_CLASSES  # the record may have expired
    if expected is not None and not 0 <= expected < num_classes:
        raise ServiceError(
            ErrorCode.VALIDATION_FAILED,
            f"expected_class_index must be between 0 and {num_classes - 1} (got {expected}).",
            {"field": "expected_class_index"},
        )


def _expected_label(prediction: dict | None, expected: int | None) -> str | None:
    if expected is None or not prediction:
        return None
    record = services().workers.model_record(prediction["model_name"], prediction["model_version"])
    return record.labels[expected]["name"] if record else None


def new_feedback(verdict: Verdict, prediction: dict | None) -> dict:
    """Store a feedback record; the prediction's sha256, model and top-5 travel with it."""
    s = services()
    image_key = keys.image(prediction["sha256"]) if prediction and s.settings.keep_feedback_images else None
    record = {
        "id": uuid.uuid4().hex,
        "prediction_id": verdict.prediction_id,
        "correct": verdict.correct,
        "expected_class_index": verdict.expected_class_index,
        "expected_label": _expected_label(prediction, verdict.expected_class_index),
        "comment": verdict.comment,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "prediction": prediction,
        "image_key": image_key,
    }
    s.feedback.save(record)
    return record

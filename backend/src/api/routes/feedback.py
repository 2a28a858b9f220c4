"""Feedback on predictions: POST /api/v1/feedback and GET /api/v1/feedback/<id>."""

from __future__ import annotations

import re

from flask import Blueprint, request
from marshmallow import ValidationError

from api.feedback import Verdict, check_expected_class, known_prediction, new_feedback
from api.forms import first_message
from api.schemas import ID_PATTERN, FeedbackRecordSchema, FeedbackRequestSchema
from api.services import services
from imgclf_contract.errors import ErrorCode, ServiceError

bp = Blueprint("feedback", __name__, url_prefix="/api/v1")
_request = FeedbackRequestSchema()
_record = FeedbackRecordSchema()


@bp.post("/feedback")
def create_feedback():
    payload = _json_object()
    try:
        verdict = Verdict(**_request.load(payload))
    except ValidationError as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, first_message(exc), {"fields": exc.messages}) from None
    prediction = known_prediction(verdict.prediction_id)
    check_expected_class(prediction, verdict.expected_class_index)
    return _record.dump(new_feedback(verdict, prediction)), 201


def _json_object() -> dict:
    """The body as a JSON object, or 400: not JSON, not an object, or nested too deeply to parse."""
    try:
        payload = request.get_json(silent=True)
    except RecursionError:
        raise ServiceError(ErrorCode.INVALID_REQUEST, "The JSON body is nested too deeply.") from None
    if not isinstance(payload, dict):
        raise ServiceError(ErrorCode.INVALID_REQUEST, "Send a JSON object (Content-Type: application/json).")
    return payload


@bp.get("/feedback/<feedback_id>")
def get_feedback(feedback_id: str):
    record = services().feedback.get(feedback_id) if re.match(ID_PATTERN, feedback_id) else None
    if record is None:
        raise ServiceError(ErrorCode.NOT_FOUND, "Unknown feedback id.", {"feedback_id": feedback_id})
    return _record.dump(record), 200

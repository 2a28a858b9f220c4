"""The reference design's routes, so its existing clients and tests keep working.

POST /predict answers exactly {"success", "prediction", "score"} — on failure
too, with the status the main API would give — and POST /feedback stores a
free-text report like other feedback. These are the only routes outside the
error envelope.
"""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from api.classify import classify, read_upload
from api.errors import RETRY_AFTER_S, redis_error
from api.feedback import Verdict, new_feedback
from api.forms import parse_form, single_file
from api.schemas import CompatFeedbackSchema, CompatPredictionSchema
from imgclf_contract.errors import ServiceError

bp = Blueprint("compat", __name__)
log = logging.getLogger("api.compat")
_prediction = CompatPredictionSchema()
_feedback = CompatFeedbackSchema()
MAX_REPORT_CHARS = 2000


def _answer(body: dict, status: int, retry_after_s: int | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    retry_after = retry_after_s or RETRY_AFTER_S.get(status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _failure(status: int, retry_after_s: int | None = None) -> Response:
    """Any failure of these routes, in their own body (the reference clients parse nothing else)."""
    if request.endpoint == "compat.predict":
        body = _prediction.dump({"success": False, "prediction": None, "score": None})
    else:
        body = _feedback.dump({"success": False, "id": None})
    return _answer(body, status, retry_after_s)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Response:
    return _failure(exc.status, exc.retry_after_s)


@bp.errorhandler(redis.RedisError)
def _redis_error(exc: redis.RedisError) -> Response:
    return _failure(redis_error(exc).status)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _failure(exc.code or 500)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return _failure(500)


@bp.post("/predict")
def predict():
    answer = classify(read_upload(single_file(request, "file")))
    best = answer.predictions[0]
    body = {"success": True, "prediction": best["label"].replace(" ", "_"), "score": round(best["score"], 4)}
    return _answer(_prediction.dump(body), 200)


@bp.post("/feedback")
def feedback():
    parse_form(request)
    report = (request.form.get("report") or "").strip()
    if not report:
        return _failure(400)
    record = new_feedback(Verdict(comment=report[:MAX_REPORT_CHARS]), prediction=None)
    return _answer(_feedback.dump({"success": True, "id": record["id"]}), 200)

"""The reference design's routes, so its existing clients and tests keep working.

POST /predict answers exactly {"success", "prediction", "score"} — on failure
too, with the status the main API would give — and POST /feedback stores a
free-text report like other feedback. These are the only routes outside the
error envelope.
"""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify, request

from api.classify import classify, read_upload
from api.errors import RETRY_AFTER_S, redis_unavailable
from api.routes.feedback import new_feedback
from api.routes.uploads import single_file
from api.schemas import CompatFeedbackSchema, CompatPredictionSchema
from ml_worker.contract.errors import ServiceError

bp = Blueprint("compat", __name__)
_prediction = CompatPredictionSchema()


def _compat(success: bool, prediction: str | None, score: float | None, status: int):
    response = jsonify(_prediction.dump({"success": success, "prediction": prediction, "score": score}))
    response.status_code = status
    if status in RETRY_AFTER_S:
        response.headers["Retry-After"] = str(RETRY_AFTER_S[status])
    return response


@bp.post("/predict")
def predict():
    try:
        answer = classify(read_upload(single_file(request, "file")))
    except ServiceError as exc:
        return _compat(False, None, None, exc.status)
    except redis.RedisError as exc:
        return _compat(False, None, None, redis_unavailable(exc).status)
    best = answer.predictions[0]
    return _compat(True, best["label"].replace(" ", "_"), round(best["score"], 4), 200)


@bp.post("/feedback")
def feedback():
    report = (request.form.get("report") or "").strip()
    if not report:
        return jsonify(CompatFeedbackSchema().dump({"success": False, "id": None})), 400
    record = new_feedback(None, None, None, None, report[:2000])
    return jsonify(CompatFeedbackSchema().dump({"success": True, "id": record["id"]})), 200

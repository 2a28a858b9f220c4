"""POST /api/v1/predictions: classify one uploaded image."""

from __future__ import annotations

from flask import Blueprint, request

from api.classify import classify, read_upload
from api.forms import load_form, single_file
from api.schemas import PredictionFormSchema, PredictionResponseSchema

bp = Blueprint("predictions", __name__, url_prefix="/api/v1")
_form = PredictionFormSchema()
_response = PredictionResponseSchema()


@bp.post("/predictions")
def create_prediction():
    upload = single_file(request, "image")
    form = load_form(_form, request.form)
    answer = classify(read_upload(upload), form.get("model"))
    return _response.dump(answer.body(form["top_k"])), 200

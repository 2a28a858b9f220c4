"""OpenAPI 3 generated from the same marshmallow schemas that validate requests and responses.

Request bodies come from the schemas too (the upload form's ``top_k`` range and
``model`` pattern are ``PredictionFormSchema``'s); only what marshmallow cannot describe is written here:
the binary file fields and each route's error statuses.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound

from api import schemas as s
from imgclf_contract.jobs import RESULT_TOP_K

DOCS_DIR = Path(__file__).parent / "docs"
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js")
API_VERSION = "1.0.0"

_ERR = "ErrorEnvelope"
COMPONENTS = {
    _ERR: s.ErrorEnvelopeSchema,
    "PredictionResponse": s.PredictionResponseSchema,
    "FeedbackRequest": s.FeedbackRequestSchema,
    "FeedbackRecord": s.FeedbackRecordSchema,
    "ModelInfo": s.ModelInfoSchema,
    "Labels": s.LabelsSchema,
    "Health": s.HealthSchema,
    "Ready": s.ReadySchema,
    "CompatPrediction": s.CompatPredictionSchema,
    "CompatFeedback": s.CompatFeedbackSchema,
}
_PREDICT_ERRORS = {
    400: f"Missing or invalid field (no file in `image`, two files, a JSON body, `top_k` outside 1-{RESULT_TOP_K}, "
    "`model` not a name or name:version).",
    404: "`model` names no known model or version; details list the known ones.",
    401: "API keys are enabled and the key is missing or wrong.",
    413: "The file is over MAX_UPLOAD_BYTES.",
    415: "Not an image we can decode (decided from the content).",
    422: "Decodes but unusable: under 16x16 or over MAX_PIXELS.",
    500: "The worker's inference failed on this image (logged).",
    429: "Queue full or rate limit reached; see Retry-After.",
    503: "Redis unavailable, or no live worker serves the model; see Retry-After.",
    504: "No result within REQUEST_TIMEOUT_S (waiting for a decode slot included).",
    507: "The store is full (its Redis reached maxmemory): nothing new can be saved.",
}
_COMMON_ERRORS = {401: _PREDICT_ERRORS[401], 429: "Rate limit reached.", 503: "Redis unavailable."}
_COMPAT_PREDICT_STATUSES = {
    200: "Top-1",
    400: "Missing or bad file",
    401: _PREDICT_ERRORS[401],
    413: _PREDICT_ERRORS[413],
    415: _PREDICT_ERRORS[415],
    422: _PREDICT_ERRORS[422],
    429: "Busy",
    500: _PREDICT_ERRORS[500],
    503: "Unavailable",
    504: "Timed out",
}
_BINARY = {"type": "string", "format": "binary"}


def _json(schema: str) -> dict:
    return {"application/json": {"schema": schema}}


def _responses(ok: tuple[int, str, str], errors: dict[int, str]) -> dict:
    status, description, schema = ok
    out = {str(status): {"description": description, "content": _json(schema)}}
    out.update({str(code): {"description": text, "content": _json(_ERR)} for code, text in errors.items()})
    return out


def _form(content_type: str, required: list[str], properties: dict) -> dict:
    return {
        "required": True,
        "content": {content_type: {"schema": {"type": "object", "required": required, "properties": properties}}},
    }


def _compat_responses(statuses: dict[int, str], schema: str) -> dict:
    """The reference routes answer every status with their own body, never the envelope."""
    return {str(code): {"description": text, "content": _json(schema)} for code, text in statuses.items()}


def _upload_body(plugin: MarshmallowPlugin) -> dict:
    """multipart/form-data: the file, plus PredictionFormSchema's fields as the schema defines them."""
    fields = plugin.converter.schema2jsonschema(s.PredictionFormSchema)["properties"]
    return _form("multipart/form-data", ["image"], {"image": _BINARY, **fields})


def _paths(plugin: MarshmallowPlugin) -> dict[str, dict]:
    last_class = s.LAST_CLASS
    report = {"type": "string", "minLength": 1, "pattern": r"\S", "description": "Not blank (blank: 400)"}
    feedback_errors = {
        400: "Invalid JSON body (strict: a boolean, an integer or null, a printable id).",
        404: "Unknown prediction id.",
        422: f"expected_class_index outside 0-{last_class}.",
        507: _PREDICT_ERRORS[507],
        **_COMMON_ERRORS,
    }
    no_default = {**_COMMON_ERRORS, 503: "No worker serves the default model."}
    unknown_model = {404: "No such model (details list the known ones).", **_COMMON_ERRORS}
    feedback_id = {"name": "feedback_id", "in": "path", "required": True, "schema": {"type": "string"}}
    model_name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": "efficientnet_lite2",
    }
    return {
        "/api/v1/predictions": {
            "post": {
                "summary": "Classify one image (top-k ImageNet classes)",
                "requestBody": _upload_body(plugin),
                "responses": _responses((200, "Top-k predictions", "PredictionResponse"), _PREDICT_ERRORS),
            }
        },
        "/api/v1/feedback": {
            "post": {
                "summary": "Say whether a prediction was right (and what it should have been)",
                "requestBody": {"required": True, "content": _json("FeedbackRequest")},
                "responses": _responses((201, "Stored feedback", "FeedbackRecord"), feedback_errors),
            }
        },
        "/api/v1/feedback/{feedback_id}": {
            "get": {
                "summary": "One stored feedback record",
                "parameters": [feedback_id],
                "responses": _responses(
                    (200, "Feedback record", "FeedbackRecord"), {404: "Unknown feedback id.", **_COMMON_ERRORS}
                ),
            }
        },
        "/api/v1/models": {
            "get": {
                "summary": "Every model (versions, input size, accuracy, workers), the default one, the upload limits",
                "responses": _responses((200, "Models", "ModelInfo"), no_default),
            }
        },
        "/api/v1/models/{name}": {
            "get": {
                "summary": "One model",
                "parameters": [model_name],
                "responses": _responses((200, "Model", "ModelSummary"), unknown_model),
            }
        },
        "/api/v1/models/{name}/labels": {
            "get": {
                "summary": f"One model's {last_class + 1} class labels (its newest version)",
                "parameters": [model_name],
                "responses": _responses((200, "Labels", "Labels"), unknown_model),
            }
        },
        "/api/v1/labels": {
            "get": {
                "summary": f"The default model's {last_class + 1} class labels",
                "responses": _responses(
                    (200, "Labels", "Labels"),
                    {**_COMMON_ERRORS, 503: "The default model was never published by a worker."},
                ),
            }
        },
        "/api/v1/health": {
            "get": {"summary": "The API process is alive", "responses": _responses((200, "Alive", "Health"), {})}
        },
        "/api/v1/ready": {
            "get": {
                "summary": "Redis answers and a worker with the model loaded is live",
                "responses": _responses((200, "Ready", "Ready"), {503: "Not ready (details name what is missing)."}),
            }
        },
        "/predict": {
            "post": {
                "summary": "Compatibility: classify (multipart field `file`), top-1 only",
                "requestBody": _form("multipart/form-data", ["file"], {"file": _BINARY}),
                "responses": _compat_responses(_COMPAT_PREDICT_STATUSES, "CompatPrediction"),
            }
        },
        "/feedback": {
            "post": {
                "summary": "Compatibility: free-text report (form field `report`)",
                "requestBody": _form("application/x-www-form-urlencoded", ["report"], {"report": report}),
                "responses": _compat_responses(
                    {200: "Stored", 400: "Missing report", **_COMMON_ERRORS}, "CompatFeedback"
                ),
            }
        },
    }


@cache
def _build() -> dict:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Image classifier API",
        version=API_VERSION,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": "Classify images into the 1000 ImageNet classes. Every error uses the ErrorEnvelope."},
    )
    for name, schema in COMPONENTS.items():
        spec.components.schema(name, schema=schema)
    for path, operations in _paths(plugin).items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def spec() -> dict:
    """The OpenAPI document (built once per process)."""
    return _build()


def docs_asset(filename: str) -> Response:
    if filename == "init.js":
        return send_from_directory(DOCS_DIR, filename)
    if filename in SWAGGER_ASSETS:
        return send_from_directory(swagger_ui_path, filename)
    raise NotFound()

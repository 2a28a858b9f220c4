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
    "DatasetCreate": s.DatasetCreateSchema,
    "Dataset": s.DatasetSchema,
    "DatasetList": s.DatasetListSchema,
    "DatasetImage": s.DatasetImageSchema,
    "DatasetImages": s.DatasetImagesSchema,
    "Removed": s.RemovedSchema,
    "FeedbackImport": s.FeedbackImportSchema,
    "FeedbackImportResult": s.FeedbackImportResultSchema,
    "TrainingRequest": s.TrainingRequestSchema,
    "Training": s.TrainingSchema,
    "Rollback": s.RollbackSchema,
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
_NAMED = {
    400: "The name in the path is not a slug (lower-case letters, digits, '_').",
    404: "No such dataset.",
    **_COMMON_ERRORS,
}
_CUSTOM = {
    400: "A built-in model (only custom models roll back or export).",
    404: "No such model or version.",
    **_COMMON_ERRORS,
}


def _path_param(name: str, example: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "example": example}


def _custom_paths() -> dict[str, dict]:
    """Datasets, trainings, rollback and export: your own categories (issue #14)."""
    dataset = _path_param("name", "flowers")
    image_upload = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image", "label"],
                "properties": {
                    "image": {"type": "string", "format": "binary"},
                    "label": {"type": "string", "minLength": 1, "maxLength": 100},
                },
            }
        }
    }
    return {
        "/api/v1/datasets": {
            "post": {
                "summary": "Create a dataset (idempotent: 200 when it exists with the same base model)",
                "requestBody": {"required": True, "content": _json("DatasetCreate")},
                "responses": {
                    **_responses(
                        (201, "Created", "Dataset"),
                        {
                            400: "Bad name or base model.",
                            404: "Unknown base model.",
                            409: "It exists with another base model.",
                            **_COMMON_ERRORS,
                            503: "Redis unavailable or no worker serves the base model.",
                        },
                    ),
                    "200": {"description": "It already existed", "content": _json("Dataset")},
                },
            },
            "get": {
                "summary": "Every dataset with its images per label",
                "responses": _responses((200, "Datasets", "DatasetList"), _COMMON_ERRORS),
            },
        },
        "/api/v1/datasets/{name}": {
            "get": {
                "summary": "One dataset: base model, images per label",
                "parameters": [dataset],
                "responses": _responses((200, "Dataset", "Dataset"), _NAMED),
            },
            "delete": {
                "summary": "Delete a dataset (its published models stay)",
                "parameters": [dataset],
                "responses": _responses((200, "Deleted; how many images", "Removed"), _NAMED),
            },
        },
        "/api/v1/datasets/{name}/images": {
            "post": {
                "summary": "Add a labelled image: its embedding is computed by a worker and stored "
                "(sha256 of the upload: re-sending only updates the label)",
                "parameters": [dataset],
                "requestBody": {"required": True, "content": image_upload},
                "responses": _responses(
                    (201, "Stored (200: already there)", "DatasetImage"),
                    {
                        **_PREDICT_ERRORS,
                        404: "No such dataset.",
                        422: "Unusable image, or the dataset is full (MAX_DATASET_IMAGES) or has 1000 labels.",
                    },
                ),
            },
            "get": {
                "summary": "sha256 and label of every image",
                "parameters": [dataset],
                "responses": _responses((200, "Images", "DatasetImages"), _NAMED),
            },
        },
        "/api/v1/datasets/{name}/images/{sha256}": {
            "delete": {
                "summary": "Remove one image",
                "parameters": [dataset, _path_param("sha256", "ab12...")],
                "responses": _responses((200, "Removed", "Removed"), {**_NAMED, 404: "No such dataset or image."}),
            }
        },
        "/api/v1/datasets/{name}/labels/{label}": {
            "delete": {
                "summary": "Remove every image of a label",
                "parameters": [dataset, _path_param("label", "tulip")],
                "responses": _responses((200, "Removed", "Removed"), {**_NAMED, 404: "No such dataset or label."}),
            }
        },
        "/api/v1/datasets/{name}/feedback": {
            "post": {
                "summary": "Add feedback on the model of the same name (right class named) to the dataset",
                "parameters": [dataset],
                "requestBody": {"required": False, "content": _json("FeedbackImport")},
                "responses": _responses(
                    (200, "Added and skipped", "FeedbackImportResult"), {**_NAMED, 422: "The dataset would be full."}
                ),
            }
        },
        "/api/v1/trainings": {
            "post": {
                "summary": "Train a custom model on a dataset (202: queued for the trainer)",
                "requestBody": {"required": True, "content": _json("TrainingRequest")},
                "responses": _responses(
                    (202, "Queued", "Training"),
                    {
                        400: "Bad body.",
                        404: "No such dataset.",
                        **_COMMON_ERRORS,
                        409: "A training of this model is already running, or the name is a built-in model.",
                        422: "Fewer than 2 labels, or a label with fewer than 5 images.",
                    },
                ),
            }
        },
        "/api/v1/trainings/{training_id}": {
            "get": {
                "summary": "A training's state, progress and (when done) its hold-out report",
                "parameters": [_path_param("training_id", "5f0c...")],
                "responses": _responses((200, "Training", "Training"), {404: "Unknown training.", **_COMMON_ERRORS}),
            }
        },
        "/api/v1/models/{name}/rollback": {
            "post": {
                "summary": "Make an earlier version answer the custom model's name (until the next training)",
                "parameters": [_path_param("name", "flowers")],
                "requestBody": {"required": True, "content": _json("Rollback")},
                "responses": _responses((200, "Model", "ModelSummary"), _CUSTOM),
            }
        },
        "/api/v1/models/{name}/export": {
            "get": {
                "summary": "Download a custom model: zip of a fused .tflite (probabilities out), labels, model card",
                "parameters": [
                    _path_param("name", "flowers"),
                    {"name": "version", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    **_responses(
                        (200, "", _ERR),
                        {
                            **_CUSTOM,
                            404: "No such model or version, or none to export: the model's base is an int8 variant.",
                            503: "Still being built, or Redis unavailable.",
                        },
                    ),
                    "200": {
                        "description": "The zip",
                        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                    },
                },
            }
        },
    }


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
        **_custom_paths(),
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

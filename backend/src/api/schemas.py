"""Marshmallow schemas for every request, response and error; OpenAPI is generated from them."""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import Schema, ValidationError, fields, validate

from imgclf_contract.jobs import RESULT_TOP_K
from imgclf_contract.model_record import IMAGENET_CLASSES, NAME_PATTERN, PRECISIONS, VERSION_PATTERN
from imgclf_contract.training import LABEL_MAX_CHARS, label_problem

LAST_CLASS = IMAGENET_CLASSES - 1
MODEL_REF_PATTERN = rf"^{NAME_PATTERN}(:{VERSION_PATTERN})?$"
NAME_FIELD_PATTERN = rf"^{NAME_PATTERN}$"


class ErrorBodySchema(Schema):
    code = fields.Str(required=True, metadata={"example": "unsupported_media_type"})
    message = fields.Str(required=True, metadata={"description": "A sentence a person can act on."})
    details = fields.Dict(required=True)


class ErrorEnvelopeSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)
    request_id = fields.Str(required=True)


class PredictionFormSchema(Schema):
    """Form fields of POST /api/v1/predictions besides the file."""

    top_k = fields.Int(load_default=5, validate=validate.Range(1, RESULT_TOP_K))
    model = fields.Str(
        load_default=None,
        validate=[validate.Length(1, 80), validate.Regexp(MODEL_REF_PATTERN, error="not a model name or name:version")],
        metadata={
            "description": "Model name, optionally name:version (default: DEFAULT_MODEL, newest live version)",
            "example": "efficientnet_lite2",
        },
    )


class ClassScoreSchema(Schema):
    label = fields.Str(required=True)
    class_index = fields.Int(required=True, validate=validate.Range(0, LAST_CLASS))
    wnid = fields.Str(required=True, allow_none=True, metadata={"description": "null for a custom model's labels"})
    score = fields.Float(required=True, validate=validate.Range(0, 1))


class ModelRefSchema(Schema):
    name = fields.Str(required=True)
    version = fields.Str(required=True)
    backend = fields.Str(allow_none=True)


class TimingsSchema(Schema):
    preprocess = fields.Float(required=True)
    queue = fields.Float(required=True)
    inference = fields.Float(required=True)
    total = fields.Float(required=True)


class BatchSchema(Schema):
    id = fields.Str(required=True)
    size = fields.Int(required=True)
    worker_id = fields.Str(required=True)
    deliveries = fields.Int(required=True, metadata={"description": "2 or more: re-delivered after a worker died"})


class ImageInfoSchema(Schema):
    sha256 = fields.Str(required=True)
    format = fields.Str(required=True)
    width = fields.Int(required=True)
    height = fields.Int(required=True)
    bytes = fields.Int(required=True)


class PredictionResponseSchema(Schema):
    id = fields.Str(required=True)
    model = fields.Nested(ModelRefSchema, required=True)
    predictions = fields.List(fields.Nested(ClassScoreSchema), required=True)
    cached = fields.Bool(required=True)
    timings_ms = fields.Nested(TimingsSchema, required=True)
    batch = fields.Nested(BatchSchema, allow_none=True, required=True)
    image = fields.Nested(ImageInfoSchema, required=True)


class StrictBool(fields.Boolean):
    """JSON true or false only: "yes", 1 or "true" are refused rather than guessed at."""

    def _deserialize(self, value: object, attr: str | None, data: Mapping | None, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInt(fields.Integer):
    """A JSON integer only: 281.5, "281" and true are refused (they were stored as 281, 281 and 1)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: object, attr: str | None, data: Mapping | None, **kwargs: object) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


# Ids are printable ASCII tokens (ours are 32 hex digits): a lone surrogate or a control
# character is refused here instead of failing when it is spelled into a Redis key.
ID_PATTERN = r"^[\x21-\x7e]{1,64}$"


class FeedbackRequestSchema(Schema):
    prediction_id = fields.Str(required=True, validate=validate.Regexp(ID_PATTERN))
    correct = StrictBool(required=True)
    # The range is checked by the route (422 validation_failed, not 400), so it is documented here only.
    expected_class_index = StrictInt(load_default=None, allow_none=True, metadata={"minimum": 0, "maximum": LAST_CLASS})
    comment = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class StoredPredictionSchema(Schema):
    sha256 = fields.Str(allow_none=True)
    model_name = fields.Str(allow_none=True)
    model_version = fields.Str(allow_none=True)
    predictions = fields.List(fields.Nested(ClassScoreSchema))


class FeedbackRecordSchema(Schema):
    id = fields.Str(required=True)
    prediction_id = fields.Str(allow_none=True, required=True)
    correct = fields.Bool(allow_none=True, required=True)
    expected_class_index = fields.Int(allow_none=True, required=True)
    expected_label = fields.Str(allow_none=True, required=True)
    comment = fields.Str(allow_none=True, required=True)
    created_at = fields.Str(required=True)
    prediction = fields.Nested(StoredPredictionSchema, allow_none=True, required=True)
    image_key = fields.Str(
        allow_none=True, metadata={"description": "Redis key of the kept image (KEEP_FEEDBACK_IMAGES)"}
    )


class LimitsSchema(Schema):
    max_upload_bytes = fields.Int(required=True)
    max_pixels = fields.Int(required=True)
    min_side = fields.Int(required=True)
    max_top_k = fields.Int(required=True)
    accepted_formats = fields.List(fields.Str(), required=True)
    accepted_mime_types = fields.List(fields.Str(), required=True)
    accepted_label = fields.Str(required=True)


class AccuracySchema(Schema):
    dataset = fields.Str(required=True, metadata={"example": "imagenet-sample-500"})
    images = fields.Int(required=True)
    top1 = fields.Float(required=True)
    top5 = fields.Float(required=True)
    seconds = fields.Float(required=True)


class ModelSummarySchema(Schema):
    """One model name as the service knows it (facts of its newest published version)."""

    name = fields.Str(required=True, metadata={"example": "efficientnet_lite2"})
    default = fields.Bool(required=True, metadata={"description": "answers requests that name no model"})
    versions = fields.List(fields.Str(), required=True, metadata={"description": "published versions, oldest first"})
    latest = fields.Str(required=True)
    available = fields.Bool(required=True, metadata={"description": "a live worker serves one of its versions"})
    input_size = fields.Int(required=True, metadata={"example": 260})
    preprocessing = fields.Str(required=True)
    num_labels = fields.Int(required=True)
    embedding_size = fields.Int(required=True, metadata={"description": "size of the pooled embedding output"})
    precision = fields.Str(
        required=True,
        validate=validate.OneOf(PRECISIONS),
        metadata={"description": "float32, or int8 for a full-integer quantised variant (a custom model: its base's)"},
    )
    published_top1 = fields.Float(allow_none=True, required=True, metadata={"description": "ImageNet validation"})
    measured = fields.Nested(
        AccuracySchema,
        allow_none=True,
        required=True,
        metadata={"description": "top-1/top-5 the build measured on the labelled sample set"},
    )
    workers = fields.List(fields.Str(), required=True, metadata={"description": "live workers serving it"})
    base = fields.Str(allow_none=True, metadata={"description": "a custom model's base model, name:version"})
    pinned = fields.Str(allow_none=True, metadata={"description": "the version a rollback made answer the name"})
    labels = fields.List(fields.Str(), allow_none=True, metadata={"description": "a custom model's labels"})
    report = fields.Dict(allow_none=True, metadata={"description": "a custom model's hold-out report"})


class ModelInfoSchema(Schema):
    """GET /models: every model, and (for existing clients) the default model's facts at the top level."""

    default = fields.Str(required=True)
    models = fields.List(fields.Nested(ModelSummarySchema), required=True)
    name = fields.Str(required=True)
    version = fields.Str(required=True)
    backend = fields.Str(required=True)
    input_size = fields.Int(required=True)
    preprocessing = fields.Str(required=True)
    num_classes = fields.Int(required=True)
    workers = fields.Int(required=True)
    limits = fields.Nested(LimitsSchema, required=True)


class LabelSchema(Schema):
    index = fields.Int(required=True)
    wnid = fields.Str(required=True, allow_none=True)
    name = fields.Str(required=True)
    synonyms = fields.List(fields.Str(), metadata={"description": "other names of the class (searchable)"})


class LabelsSchema(Schema):
    model = fields.Str(required=True)
    model_version = fields.Str(required=True)
    labels = fields.List(fields.Nested(LabelSchema), required=True)


class HealthSchema(Schema):
    status = fields.Str(required=True)


class ReadySchema(Schema):
    status = fields.Str(required=True, metadata={"description": "ready | not_ready"})
    redis = fields.Bool(required=True)
    workers = fields.Int(required=True)
    missing = fields.List(fields.Str(), required=True)


class CompatPredictionSchema(Schema):
    """The reference design's /predict body: exactly these three keys."""

    success = fields.Bool(required=True)
    prediction = fields.Str(allow_none=True, required=True)
    score = fields.Float(allow_none=True, required=True)


class CompatFeedbackSchema(Schema):
    success = fields.Bool(required=True)
    id = fields.Str(allow_none=True)


def _label(value: str) -> None:
    if problem := label_problem(value):
        raise ValidationError(problem)


def _name_field(**kwargs) -> fields.Str:
    return fields.Str(
        validate=[validate.Length(1, 64), validate.Regexp(NAME_FIELD_PATTERN, error="lower-case letters, digits, '_'")],
        **kwargs,
    )


class DatasetCreateSchema(Schema):
    name = _name_field(required=True, metadata={"example": "flowers"})
    base_model = _name_field(load_default=None, metadata={"description": "default: DEFAULT_MODEL"})


class DatasetImageFormSchema(Schema):
    label = fields.Str(required=True, validate=_label, metadata={"maxLength": LABEL_MAX_CHARS, "example": "tulip"})


class DatasetSchema(Schema):
    name = fields.Str(required=True)
    base_model = fields.Str(required=True)
    base_version = fields.Str(required=True)
    created_at = fields.Str(required=True)
    images = fields.Int(required=True)
    labels = fields.Dict(
        keys=fields.Str(), values=fields.Int(), required=True, metadata={"description": "images per label"}
    )
    max_images = fields.Int(required=True)


class DatasetListSchema(Schema):
    datasets = fields.List(fields.Nested(DatasetSchema), required=True)


class HeldImageSchema(Schema):
    sha256 = fields.Str(required=True)
    label = fields.Str(required=True)


class DatasetImageSchema(HeldImageSchema):
    created = fields.Bool(required=True, metadata={"description": "false: it was already there (label updated)"})


class DatasetImagesSchema(Schema):
    images = fields.List(fields.Nested(HeldImageSchema), required=True)


class RemovedSchema(Schema):
    removed = fields.Int(required=True)


class FeedbackImportSchema(Schema):
    feedback_ids = fields.List(
        fields.Str(validate=validate.Length(1, 64)),
        load_default=None,
        validate=validate.Length(max=10_000),
        metadata={"description": "default: every feedback on the model named like the dataset"},
    )


class FeedbackImportResultSchema(Schema):
    added = fields.Int(required=True)
    skipped = fields.Dict(keys=fields.Str(), values=fields.Int(), required=True)


class TrainingRequestSchema(Schema):
    dataset = _name_field(required=True)
    model = _name_field(load_default=None, metadata={"description": "model name to publish; default: the dataset's"})
    holdout = fields.Float(load_default=0.2, validate=validate.Range(0.05, 0.5))


class TrainingSchema(Schema):
    id = fields.Str(required=True)
    model = fields.Str(required=True)
    dataset = fields.Str(required=True)
    status = fields.Str(required=True, metadata={"description": "queued | running | succeeded | failed"})
    phase = fields.Str(
        required=True, metadata={"description": "queued, loading, training, publishing, exporting, done"}
    )
    holdout = fields.Float(required=True)
    images = fields.Int(required=True)
    counts = fields.Dict(keys=fields.Str(), values=fields.Int(), required=True)
    epoch = fields.Int()
    max_epochs = fields.Int()
    holdout_accuracy = fields.Float(metadata={"description": "hold-out top-1 of the best epoch so far"})
    created_ms = fields.Int(required=True)
    started_ms = fields.Int()
    finished_ms = fields.Int()
    heartbeat_ms = fields.Int()
    version = fields.Str(metadata={"description": "the published version"})
    error = fields.Str()
    report = fields.Dict(metadata={"description": "top1, per_label precision/recall, confusions"})


class RollbackSchema(Schema):
    version = fields.Str(required=True, validate=validate.Regexp(rf"^{VERSION_PATTERN}$"))

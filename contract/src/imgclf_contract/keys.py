"""Redis key names: the only place either service spells one."""

from __future__ import annotations

PREFIX = "imgclf"
JOBS_GROUP = "workers"
WORKERS_ZSET = f"{PREFIX}:workers"  # member: worker id, score: last heartbeat (ms)
MODELS_SET = f"{PREFIX}:models"  # "name:version" of every model a worker ever published
FEEDBACK_INDEX = f"{PREFIX}:feedback:ids"  # list of feedback ids, oldest first
DATASETS_SET = f"{PREFIX}:index:datasets"  # names of every dataset
TRAINING_QUEUE = f"{PREFIX}:trainings-queue"  # list of training ids the trainer takes, oldest first
TRAINING_INDEX = f"{PREFIX}:index:trainings"  # list of every training id, oldest first
EXPORT_QUEUE = f"{PREFIX}:exports-queue"  # "name:version" of published custom models whose export is to build


def jobs(name: str, version: str) -> str:
    """One stream per model version: a worker reads the streams of the models it serves."""
    return f"{PREFIX}:jobs:{name}:{version}"


def serving(name: str, version: str) -> str:
    """Sorted set of the workers serving this model version (score: last heartbeat, ms)."""
    return f"{PREFIX}:serving:{name}:{version}"


def model(name: str, version: str) -> str:
    """The model card and labels a worker publishes, so the API needs no model files."""
    return f"{PREFIX}:model:{name}:{version}"


def reply(job_id: str) -> str:
    """List the worker pushes one result onto; the API blocks on it."""
    return f"{PREFIX}:reply:{job_id}"


def worker_info(worker_id: str) -> str:
    return f"{PREFIX}:worker:{worker_id}"


def cache(model_name: str, model_version: str, sha256: str) -> str:
    return f"{PREFIX}:cache:{model_name}:{model_version}:{sha256}"


def prediction(prediction_id: str) -> str:
    return f"{PREFIX}:prediction:{prediction_id}"


def feedback(feedback_id: str) -> str:
    return f"{PREFIX}:feedback:{feedback_id}"


def image(sha256: str) -> str:
    """Uploaded bytes, kept only with KEEP_FEEDBACK_IMAGES."""
    return f"{PREFIX}:image:{sha256}"


def rate_limit(client: str, window: int) -> str:
    return f"{PREFIX}:ratelimit:{client}:{window}"


def dataset(name: str) -> str:
    """Hash: the dataset's facts (base model and version, created_at)."""
    return f"{PREFIX}:dataset:{name}"


def dataset_labels(name: str) -> str:
    """Hash: sha256 of an upload -> its label."""
    return f"{PREFIX}:dataset-labels:{name}"


def dataset_embeddings(name: str) -> str:
    """Hash: sha256 of an upload -> its base model embedding (float32 bytes)."""
    return f"{PREFIX}:dataset-embeddings:{name}"


def dataset_image(name: str, sha256: str) -> str:
    """An upload's bytes, kept only with KEEP_DATASET_IMAGES."""
    return f"{PREFIX}:dataset-image:{name}:{sha256}"


def head(name: str, version: str) -> str:
    """Hash: a custom model version's head weights (``w``, ``b`` as float32 bytes)."""
    return f"{PREFIX}:head:{name}:{version}"


def head_pin(name: str) -> str:
    """The version of a custom model that answers its bare name (set by a rollback)."""
    return f"{PREFIX}:head-pin:{name}"


def export(name: str, version: str) -> str:
    """The exported bundle (zip: fused .tflite, labels, model card) of a custom model version."""
    return f"{PREFIX}:export:{name}:{version}"


def training(training_id: str) -> str:
    """Hash: one training's state, progress and report."""
    return f"{PREFIX}:training:{training_id}"


def training_lock(name: str) -> str:
    """The id of the training running for a model name (one at a time per name)."""
    return f"{PREFIX}:training-lock:{name}"

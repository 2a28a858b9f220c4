"""Redis key names: the only place either service spells one.

Three roles, which may share one Redis (compose) or be three (``make up``): the **store**
(REDIS_URL, persistent: predictions, feedback, kept images; datasets, trainings, custom heads,
rollback pins, exports, and the custom models' records with their own ``MODELS_SET``), the
**queue** (QUEUE_REDIS_URL, never persisted: the job streams (one per model version) and their
crops, replies, heartbeats, base model records and their index, rate limits) and
the **cache** (CACHE_REDIS_URL, evicts least recently used). No fixed key lies inside a
per-id family (``feedback("ids")`` once named the feedback index): fixed keys and families
are listed below, and a test checks they cannot collide.
"""

from __future__ import annotations

PREFIX = "imgclf"
JOBS_GROUP = "workers"
WORKERS_ZSET = f"{PREFIX}:workers"  # member: worker id, score: last heartbeat (ms)
MODELS_SET = f"{PREFIX}:models"  # "name:version" of every model a worker ever published
FEEDBACK_INDEX = f"{PREFIX}:index:feedback"  # list of feedback ids, oldest first
LEGACY_FEEDBACK_INDEX = f"{PREFIX}:feedback:ids"  # before issue #12; renamed once by the API
DATASETS_SET = f"{PREFIX}:index:datasets"  # names of every dataset
TRAINING_QUEUE = f"{PREFIX}:trainings-queue"  # list of training ids the trainer takes, oldest first
TRAINING_INDEX = f"{PREFIX}:index:trainings"  # list of every training id, oldest first
EXPORT_QUEUE = f"{PREFIX}:exports-queue"  # "name:version" of published custom models whose export is to build
FIXED_KEYS = (WORKERS_ZSET, MODELS_SET, FEEDBACK_INDEX, DATASETS_SET, TRAINING_QUEUE, TRAINING_INDEX, EXPORT_QUEUE)


# Every per-id family, as the prefix its keys start with.
FAMILIES = {
    "jobs": f"{PREFIX}:jobs:",
    "serving": f"{PREFIX}:serving:",
    "model": f"{PREFIX}:model:",
    "reply": f"{PREFIX}:reply:",
    "tensor": f"{PREFIX}:tensor:",
    "worker_info": f"{PREFIX}:worker:",
    "cache": f"{PREFIX}:cache:",
    "prediction": f"{PREFIX}:prediction:",
    "feedback": f"{PREFIX}:feedback:",
    "image": f"{PREFIX}:image:",
    "rate_limit": f"{PREFIX}:ratelimit:",
    "dataset": f"{PREFIX}:dataset:",
    "dataset_labels": f"{PREFIX}:dataset-labels:",
    "dataset_embeddings": f"{PREFIX}:dataset-embeddings:",
    "dataset_image": f"{PREFIX}:dataset-image:",
    "head": f"{PREFIX}:head:",
    "head_pin": f"{PREFIX}:head-pin:",
    "export": f"{PREFIX}:export:",
    "training": f"{PREFIX}:training:",
    "training_lock": f"{PREFIX}:training-lock:",
}


def jobs(name: str, version: str) -> str:
    """One stream per model version: a worker reads the streams of the models it serves."""
    return f"{FAMILIES['jobs']}{name}:{version}"


def serving(name: str, version: str) -> str:
    """Sorted set of the workers serving this model version (score: last heartbeat, ms)."""
    return f"{FAMILIES['serving']}{name}:{version}"


def model(name: str, version: str) -> str:
    """The model card and labels a worker publishes, so the API needs no model files."""
    return f"{FAMILIES['model']}{name}:{version}"


def reply(job_id: str) -> str:
    """List the worker pushes one result onto; the API blocks on it."""
    return FAMILIES["reply"] + job_id


def tensor(job_id: str) -> str:
    """A job's image (its crop, size x size x 3 uint8), beside the stream entry: a Lua script
    that saw the bytes would hash every one of them (Redis 7 hashes whole strings), which
    cost the queue Redis more CPU than everything else it does for the job."""
    return FAMILIES["tensor"] + job_id


def worker_info(worker_id: str) -> str:
    return FAMILIES["worker_info"] + worker_id


def cache(model_name: str, model_version: str, sha256: str) -> str:
    return f"{FAMILIES['cache']}{model_name}:{model_version}:{sha256}"


def prediction(prediction_id: str) -> str:
    return FAMILIES["prediction"] + prediction_id


def feedback(feedback_id: str) -> str:
    return FAMILIES["feedback"] + feedback_id


def image(sha256: str) -> str:
    """Uploaded bytes, kept only with KEEP_FEEDBACK_IMAGES."""
    return FAMILIES["image"] + sha256


def rate_limit(client: str, window: int, scope: str = "requests") -> str:
    """One client's count in one window; ``scope``: every request, or one kind ("feedback")."""
    return f"{FAMILIES['rate_limit']}{scope}:{client}:{window}"


def dataset(name: str) -> str:
    """Hash: the dataset's facts (base model and version, created_at)."""
    return f"{FAMILIES['dataset']}{name}"


def dataset_labels(name: str) -> str:
    """Hash: sha256 of an upload -> its label."""
    return f"{FAMILIES['dataset_labels']}{name}"


def dataset_embeddings(name: str) -> str:
    """Hash: sha256 of an upload -> its base model embedding (float32 bytes)."""
    return f"{FAMILIES['dataset_embeddings']}{name}"


def dataset_image(name: str, sha256: str) -> str:
    """An upload's bytes, kept only with KEEP_DATASET_IMAGES."""
    return f"{FAMILIES['dataset_image']}{name}:{sha256}"


def head(name: str, version: str) -> str:
    """Hash: a custom model version's head weights (``w``, ``b`` as float32 bytes)."""
    return f"{FAMILIES['head']}{name}:{version}"


def head_pin(name: str) -> str:
    """The version of a custom model that answers its bare name (set by a rollback)."""
    return f"{FAMILIES['head_pin']}{name}"


def export(name: str, version: str) -> str:
    """The exported bundle (zip: fused .tflite, labels, model card) of a custom model version."""
    return f"{FAMILIES['export']}{name}:{version}"


def training(training_id: str) -> str:
    """Hash: one training's state, progress and report."""
    return f"{FAMILIES['training']}{training_id}"


def training_lock(name: str) -> str:
    """The id of the training running for a model name (one at a time per name)."""
    return f"{FAMILIES['training_lock']}{name}"


# What a worker may touch (Redis ACL key patterns): on the queue, its jobs and records; on the
# store, nothing but reading custom heads (published there by the trainer, durable like the rest).
WORKER_FAMILIES = ("jobs", "serving", "model", "reply", "tensor", "worker_info")
WORKER_KEY_PATTERNS = (WORKERS_ZSET, MODELS_SET, *(FAMILIES[f] + "*" for f in WORKER_FAMILIES))
WORKER_STORE_READ_PATTERNS = (FAMILIES["head"] + "*",)

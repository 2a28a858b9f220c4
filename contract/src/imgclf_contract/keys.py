"""Redis key names: the only place either service spells one.

Three roles, which may share one Redis (compose) or be three (``make up``): the **store**
(REDIS_URL, persistent: predictions, feedback, kept images), the **queue** (QUEUE_REDIS_URL,
never persisted: the job streams (one per model version) and their crops, replies, heartbeats,
model records and their index, rate limits) and
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
FIXED_KEYS = (WORKERS_ZSET, MODELS_SET, FEEDBACK_INDEX)


# Every per-id family, as the prefix its keys start with.
FAMILIES = {
    "jobs": f"{PREFIX}:jobs:",
    "serving": f"{PREFIX}:serving:",
    "model": f"{PREFIX}:model:",
    "reply": f"{PREFIX}:reply:",
    "worker_info": f"{PREFIX}:worker:",
    "cache": f"{PREFIX}:cache:",
    "prediction": f"{PREFIX}:prediction:",
    "feedback": f"{PREFIX}:feedback:",
    "image": f"{PREFIX}:image:",
    "rate_limit": f"{PREFIX}:ratelimit:",
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


# What a worker may touch (Redis ACL key patterns on the queue; it has no access to the store).
WORKER_FAMILIES = ("jobs", "serving", "model", "reply", "worker_info")
WORKER_KEY_PATTERNS = (WORKERS_ZSET, MODELS_SET, *(FAMILIES[f] + "*" for f in WORKER_FAMILIES))

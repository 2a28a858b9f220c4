"""Everything a request handler reaches besides the request: settings, stores, queue, decode slots.

``create_app`` builds one ``Services`` per app; handlers get it with ``services()``,
the one way into them (Flask's tutorial does the same with ``get_db()``).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from api.queue import JobQueue
from api.settings import ApiSettings
from api.slots import FifoSlots
from api.store.datasets import Datasets
from api.store.feedback import FeedbackLog
from api.store.models import ModelCatalogue
from api.store.predictions import Predictions
from api.store.rate_limits import RateLimits
from api.store.results import ResultCache
from api.store.trainings import Trainings
from api.store.workers import Workers
from imgclf_contract import redis_client

EXTENSION = "imgclf"


@dataclass(frozen=True)
class Services:
    settings: ApiSettings
    redis: redis.Redis
    workers: Workers
    models: ModelCatalogue
    results: ResultCache
    predictions: Predictions
    feedback: FeedbackLog
    datasets: Datasets
    trainings: Trainings
    rate_limits: RateLimits
    queue: JobQueue
    decode_slots: FifoSlots

    @classmethod
    def create(cls, settings: ApiSettings) -> Services:
        """One Redis connection pool for all of them; nothing connects until the first command."""
        client = redis_client.connect(
            settings,
            socket_connect_timeout=1.0,
            socket_timeout=settings.request_timeout_s + 2,
            health_check_interval=5,
            retry_on_timeout=False,
        )
        workers = Workers(client, settings.heartbeat_stale_s)
        return cls(
            settings=settings,
            redis=client,
            workers=workers,
            models=ModelCatalogue(client, workers, settings.heartbeat_stale_s, settings.default_model),
            results=ResultCache(client, settings.cache_ttl_s),
            predictions=Predictions(client, settings.prediction_ttl_s),
            feedback=FeedbackLog(client),
            datasets=Datasets(client),
            trainings=Trainings(client),
            rate_limits=RateLimits(client),
            queue=JobQueue(client, settings),
            decode_slots=FifoSlots(settings.decode_concurrency),
        )


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions[EXTENSION]

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
    redis: redis.Redis  # the store (REDIS_URL)
    redis_pools: tuple[redis.Redis, ...]  # every distinct Redis: store, queue, cache
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
        """One connection pool per Redis role (one in all when they share a URL); nothing
        connects until the first command."""
        pools: dict[str, redis.Redis] = {}
        for url in (settings.redis_url, settings.queue_url, settings.cache_url):
            pools.setdefault(
                url,
                redis_client.connect(
                    settings,
                    url,
                    socket_connect_timeout=1.0,
                    socket_timeout=settings.request_timeout_s + 2,
                    health_check_interval=5,
                    retry_on_timeout=False,
                ),
            )
        store, queue, cache = pools[settings.redis_url], pools[settings.queue_url], pools[settings.cache_url]
        # Heartbeats and base model records live in the queue, custom models' records in the store.
        workers = Workers(queue, store, settings.heartbeat_stale_s)
        return cls(
            settings=settings,
            redis=store,
            redis_pools=tuple(pools.values()),
            workers=workers,
            models=ModelCatalogue(queue, store, workers, settings.heartbeat_stale_s, settings.default_model),
            results=ResultCache(cache, settings.cache_ttl_s),
            predictions=Predictions(store, settings.prediction_ttl_s),
            feedback=FeedbackLog(store),
            datasets=Datasets(store),
            trainings=Trainings(store),
            rate_limits=RateLimits(queue),
            queue=JobQueue(queue, settings),
            decode_slots=FifoSlots(settings.decode_concurrency),
        )


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions[EXTENSION]

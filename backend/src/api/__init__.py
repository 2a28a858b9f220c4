"""The JSON-only HTTP API: ``create_app()`` is the application factory."""

from __future__ import annotations

from flask import Flask

from api.slots import FifoSlots
from ml_worker.contract.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; settings come from the environment unless given (tests)."""
    from api import errors, metrics, security
    from api.queue import JobQueue
    from api.routes import compat, feedback, meta, predictions
    from api.store import Store

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        # Whole-request cap: the file limit plus room for multipart overhead; the
        # exact per-file limit is checked on the file's own bytes.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=settings.max_upload_bytes + 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    store = Store(settings)
    app.extensions["store"] = store
    app.extensions["queue"] = JobQueue(store.queue, settings)
    app.extensions["decode_slots"] = FifoSlots(settings.decode_concurrency)
    security.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    for blueprint in (predictions.bp, feedback.bp, meta.bp, compat.bp, metrics.bp):
        app.register_blueprint(blueprint)
    return app

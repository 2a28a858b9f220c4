"""The JSON-only HTTP API: ``create_app()`` is the application factory."""

from __future__ import annotations

from flask import Flask

from api.settings import ApiSettings


def create_app(settings: ApiSettings | None = None) -> Flask:
    """Build the app; settings come from the environment unless given (tests)."""
    from api import errors, metrics, middleware
    from api.forms import InMemoryUploads
    from api.routes import compat, datasets, feedback, meta, predictions
    from api.services import EXTENSION, Services

    settings = settings or ApiSettings.from_env()
    settings.validate()
    app = Flask(__name__)
    app.request_class = InMemoryUploads
    # No redirects: werkzeug would merge "//" in paths with a 308 whose Location takes its host
    # from the request's Host header. "/api//v1/health" is simply not a route (404).
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.config.update(
        # Whole-request cap: the file limit plus room for multipart overhead; the
        # exact per-file limit is checked on the file's own bytes.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=settings.max_upload_bytes + 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions[EXTENSION] = Services.create(settings)
    middleware.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    for blueprint in (predictions.bp, feedback.bp, datasets.bp, meta.bp, compat.bp, metrics.bp):
        app.register_blueprint(blueprint)
    return app

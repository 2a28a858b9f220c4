"""gunicorn settings, derived from the API's own settings (``api.settings``)."""

import os

from api.settings import ApiSettings

_settings = ApiSettings.from_env()

bind = os.environ.get("API_BIND", "127.0.0.1:8081")
worker_class = "gthread"
workers = _settings.api_processes
threads = _settings.api_threads
# A request may wait REQUEST_TIMEOUT_S for its answer; give gunicorn a margin over that.
timeout = int(_settings.request_timeout_s) + 10
graceful_timeout = int(_settings.request_timeout_s) + 5
keepalive = 15
accesslog = None  # the app logs each request as a JSON line with its request id
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "imgclf_contract.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": _settings.log_level.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": _settings.log_level.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"], "level": _settings.log_level.upper(), "propagate": False},
    },
}
wsgi_app = "api.wsgi:app"


def child_exit(_server, worker) -> None:
    """Drop a dead process's live gauges from the multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

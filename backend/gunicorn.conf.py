"""gunicorn settings, derived from the API's own settings (``api.settings``)."""

import ctypes
import os

from gunicorn.glogging import Logger

from api.settings import ApiSettings

_settings = ApiSettings.from_env()
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt()
_MMAP_THRESHOLD_BYTES = 1 << 20
_TRIM_THRESHOLD_BYTES = 4 << 20


def _tune_malloc() -> None:
    """Decoded images of 1 MB and up get their own mappings, returned to the system when freed;
    smaller ones are reused from the heap by the next request.

    glibc raises its mmap threshold after the first big free (up to 32 MB), so a burst of
    big decodes would otherwise stay resident for good; a fixed threshold turns that off.
    Setting it also pins the trim threshold at glibc's 128 KB, so every request's freed decode
    buffers (an ImageNet photo's ~750 KB, under the mmap threshold) left the heap and were
    faulted in again, zeroed, by the next: 4 MB of free heap top stays (~0.5 ms of API CPU
    per image at c=16). Set here, in the master, so every forked API process inherits it.
    """
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)


_tune_malloc()

bind = os.environ.get("API_BIND", "127.0.0.1:8081")
# gunicornc's control socket: per stack under its run directory (make up sets it), else none,
# never the shared ~/.gunicorn/gunicorn.ctl that a second stack would take over and delete.
control_socket = os.environ.get("API_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
worker_class = "gthread"
workers = _settings.api_processes
threads = _settings.api_threads
# A request may wait REQUEST_TIMEOUT_S for its answer; give gunicorn a margin over that.
timeout = int(_settings.request_timeout_s) + 10
graceful_timeout = int(_settings.request_timeout_s) + 5
keepalive = 15
# Above nginx's own limits (large_client_header_buffers 4 8k: an 8 KB request line, 32 KB of
# headers), so whatever nginx lets through gunicorn accepts, and every refusal a client sees
# is nginx's JSON one rather than gunicorn's plain-text 414/400.
limit_request_line = 8190  # gunicorn's maximum
limit_request_fields = 10_000  # 32 KB of headers is at most ~8,400 lines
limit_request_field_size = 8190
accesslog = None  # the app logs each request as a JSON line with its request id
errorlog = "-"


class AppLogsRequests(Logger):
    """gunicorn's own access line would repeat the app's (without the request id): with a
    logconfig_dict gunicorn writes it whatever ``accesslog`` says, after formatting a dozen
    fields of every request. The app's line (``api.metrics``) is the access log."""

    def access(self, resp, req, environ, request_time) -> None:
        return None


logger_class = AppLogsRequests
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "imgclf_contract.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": _settings.log_level.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": _settings.log_level.upper(), "propagate": False},
    },
}
wsgi_app = "api.wsgi:app"


def child_exit(_server, worker) -> None:
    """Drop a dead process's live gauges from the multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

"""SIGTERM/SIGINT ask a long-running process (worker, trainer) to stop after the work in hand."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("ml_worker.shutdown")


def stop_on_signals(stopping: threading.Event, finishing: str) -> None:
    """Set ``stopping`` on SIGTERM or SIGINT, logging what the process finishes first."""

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, %s", signal.Signals(signum).name, finishing)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

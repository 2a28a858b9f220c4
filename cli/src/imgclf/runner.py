"""Classify many files concurrently with a bounded number in flight, stopping cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

from imgclf.client import ApiError, Cancelled, Client
from imgclf.results import Row


def classify_file(client: Client, path: Path) -> Row:
    """One file -> one row; per-file failures become error rows.

    Only a refused API key (401) raises: every other file would fail the same way, so the run stops.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Row.failure(str(path), None, exc)
    try:
        return Row.success(str(path), data, client.classify(path.name, data))
    except ApiError as exc:
        if exc.status == 401:
            raise
        return Row.failure(str(path), data, exc)


def classify_all(client: Client, paths: list[Path], concurrency: int) -> Iterator[Row]:
    """Rows in completion order. At most 2 x concurrency files are queued, so stopping abandons little work.

    Once client.stop is set nothing new is submitted, queued files are dropped and requests waiting
    to retry give up; rows of requests already answered are still yielded.
    """
    pending: set[Future[Row]] = set()
    todo = iter(paths)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="imgclf") as pool:
        try:
            while True:
                while not client.stop.is_set() and len(pending) < 2 * concurrency:
                    path = next(todo, None)
                    if path is None:
                        break
                    pending.add(pool.submit(classify_file, client, path))
                if not pending:
                    return
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    if not future.cancelled() and not isinstance(future.exception(), Cancelled):
                        yield future.result()
        finally:
            if pending:  # the consumer stopped early or a 401 was raised: abandon the rest
                client.stop.set()
            for future in pending:
                future.cancel()


@contextmanager
def stop_on_sigint(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the run to stop gracefully; a second one interrupts at once (KeyboardInterrupt)."""

    def handler(_signum: int, _frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.write(2, b"\nstopping: finishing the requests in flight (Ctrl-C again to quit at once)\n")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

"""The fast tier's stand-ins for separate processes: the real worker code (real LiteRT model,
real Redis) on threads of the test process, and the Flask app served over real HTTP."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial

import redis
from flask import Flask
from werkzeug.serving import make_server

from ml_worker.build import DEFAULT_MODELS
from ml_worker.settings import WorkerSettings
from ml_worker.worker import ServedModel, Worker, load
from testsupport.delayed_backend import delayed

READ_BLOCK_MS = 50  # short blocking reads: a test's worker stops within this
STOP_POLL_S = 0.02  # how often the served app checks for shutdown (werkzeug's default: 0.5 s)


@dataclass(frozen=True)
class LoadedModels:
    """The LiteRT backends and records of the models `make up` builds (Lite0 and Lite2), loaded
    once per test session: a test's worker serves all of them, or the ones it names."""

    models: tuple[ServedModel, ...]

    @classmethod
    def load(cls) -> LoadedModels:
        return cls(tuple(load(WorkerSettings(backend="litert", models=DEFAULT_MODELS))))

    def only(self, names: tuple[str, ...] | None) -> list[ServedModel]:
        """These models (all when ``names`` is None), in the order they were loaded."""
        return [m for m in self.models if names is None or m.record.name in names]


class InProcessWorker:
    """ml_worker's Worker and Heartbeat, started and stopped the way ``ml-worker`` does it."""

    def __init__(self, settings: WorkerSettings, models: list[ServedModel], client: redis.Redis, delay_s: float = 0.0):
        self.worker = Worker(settings, delayed(models, delay_s), client, block_ms=READ_BLOCK_MS)
        self.heartbeat = self.worker.heartbeat()
        self._loop = threading.Thread(target=self.worker.run, name="worker-loop", daemon=True)

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id

    def start(self) -> InProcessWorker:
        """Live (groups joined, models published, first heartbeat written) before this returns."""
        self.worker.prepare()
        self.heartbeat.beat()
        self._loop.start()
        self.heartbeat.start()
        return self

    def stop(self) -> None:
        """Like SIGTERM: withdraw the heartbeat, finish the batch in hand, answer the rest, leave."""
        if self.worker.stopping.is_set():
            return
        self.worker.stopping.set()
        self.heartbeat.join(timeout=10)
        self._loop.join(timeout=10)
        if self._loop.is_alive():  # draining beside a lane still in a batch would strand its jobs
            raise RuntimeError("the worker's lanes did not stop within 10 s")
        self.worker.drain_and_leave()


class ServedApp:
    """The app on a real HTTP port (werkzeug, threaded) for clients that speak HTTP: the imgclf CLI."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        serve = partial(self._server.serve_forever, poll_interval=STOP_POLL_S)
        self._thread = threading.Thread(target=serve, name="served-app", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

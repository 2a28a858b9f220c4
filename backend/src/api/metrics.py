"""Prometheus metrics: per-process figures merged across gunicorn processes
(prometheus-client multiprocess mode), plus queue depth and the workers'
figures read from their heartbeats at scrape time."""

from __future__ import annotations

import logging
import os
import time

import redis
from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from api.services import Services, services

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter("imgclf_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram("imgclf_http_request_duration_seconds", "HTTP latency", ["route"], buckets=LATENCY_BUCKETS)
PREPROCESS_SECONDS = Histogram("imgclf_preprocess_seconds", "Decode + preprocessing time", buckets=LATENCY_BUCKETS)
QUEUE_SECONDS = Histogram(
    "imgclf_queue_wait_seconds", "Time waiting for a worker, inference excluded", buckets=LATENCY_BUCKETS
)
CACHE_LOOKUPS = Counter("imgclf_cache_lookups_total", "Result cache lookups", ["result"])

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
# The workers' figures (published in their heartbeats): name -> help.
WORKER_COUNTERS = {
    "jobs": "Jobs answered",
    "batches": "Batches run",
    "expired": "Jobs skipped past their deadline",
    "claimed": "Jobs re-claimed from dead workers",
}
WORKER_HISTOGRAMS = {"batch_size": "Images per inference", "inference_seconds": "Inference time per batch"}

bp = Blueprint("metrics", __name__)
access_log = logging.getLogger("api.access")


def method_label(method: str) -> str:
    """A client picks the method: any it may send beyond the standard ones counts as "other",
    so labels (and /metrics) stay bounded. Routes are bounded already: unknown ones are "unmatched"."""
    return method if method in STANDARD_METHODS else "other"


class RedisCollector:
    """Queue depth and every live worker's counters, read at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self):
        redis_up = GaugeMetricFamily("imgclf_redis_up", "Redis answered this scrape")
        try:
            records = [v.record for e in self.services.models.entries(fresh=True) for v in e.versions]
            depths = {f"{r.name}:{r.version}": self.services.queue.depth(r) for r in records}
            workers = self.services.workers.live(fresh=True)
        except redis.RedisError:
            redis_up.add_metric([], 0)
            yield redis_up
            return
        redis_up.add_metric([], 1)
        yield redis_up
        depth = GaugeMetricFamily("imgclf_queue_depth", "Jobs in a model's stream", labels=["model", "state"])
        for model, queue in depths.items():
            depth.add_metric([model, "waiting"], queue.waiting)
            depth.add_metric([model, "in_progress"], queue.in_progress)
        yield depth
        up = GaugeMetricFamily("imgclf_workers_live", "Workers with a fresh heartbeat")
        up.add_metric([], len(workers))
        yield up
        rss = GaugeMetricFamily("imgclf_worker_rss_bytes", "Worker resident memory", labels=["worker"])
        counters = {
            name: CounterMetricFamily(f"imgclf_worker_{name}", help_, labels=["worker"])
            for name, help_ in WORKER_COUNTERS.items()
        }
        hists = {
            name: HistogramMetricFamily(f"imgclf_worker_{name}", help_, labels=["worker"])
            for name, help_ in WORKER_HISTOGRAMS.items()
        }
        for w in workers:
            wid, stats = w["worker_id"], w["stats"]
            rss.add_metric([wid], w.get("rss_bytes", 0))
            for name, family in counters.items():
                family.add_metric([wid], stats[f"{name}_total"])
            for name, family in hists.items():
                h = stats[name]
                buckets = [(str(b), v) for b, v in h["buckets"].items()] + [("+Inf", h["count"])]
                family.add_metric([wid], buckets, h["sum"])
        yield rss
        yield from counters.values()
        yield from hists.values()


def _process_registry() -> CollectorRegistry:
    """All gunicorn processes' figures when running multiprocess, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg)
    return reg


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    from_redis = CollectorRegistry()
    from_redis.register(RedisCollector(services()))
    body = generate_latest(_process_registry()) + generate_latest(from_redis)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUESTS.labels(route, method_label(request.method), str(response.status_code)).inc()
        LATENCY.labels(route).observe(elapsed)
        access_log.info(
            "%s %s %s",
            request.method,
            route,
            response.status_code,
            extra={"request_id": g.get("request_id"), "status": response.status_code, "ms": round(elapsed * 1000, 2)},
        )
        return response

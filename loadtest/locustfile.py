"""Locust users for ``make loadtest``: mostly photo uploads, plus the other things a visitor does.

Bodies are built once from the benchmark photo set (loadtest/images.py), so
the users are cheap on CPU and every run sends the same bytes.
"""

from __future__ import annotations

import itertools
import os

import images  # locust puts this file's folder on the path
from locust import FastHttpUser, between, task

PHOTOS = images.photo_set(int(os.environ.get("LOCUST_IMAGES", "24")))
API_BODIES = [images.multipart(p, "image") for p in PHOTOS]
COMPAT_BODIES = [images.multipart(p, "file") for p in PHOTOS]


class Visitor(FastHttpUser):
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        self._next = itertools.count(id(self) % len(PHOTOS))

    def _post(self, path: str, bodies: list[tuple[bytes, str]], name: str) -> None:
        body, content_type = bodies[next(self._next) % len(bodies)]
        with self.client.post(
            path, data=body, headers={"Content-Type": content_type}, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif path == "/predict" and not response.json().get("success"):
                response.failure("success is false")
            elif path != "/predict" and not response.json().get("predictions"):
                response.failure("no predictions")

    @task(20)
    def classify(self) -> None:
        self._post("/api/v1/predictions", API_BODIES, "POST /api/v1/predictions")

    @task(2)
    def classify_compat(self) -> None:
        self._post("/predict", COMPAT_BODIES, "POST /predict")

    @task(1)
    def models(self) -> None:
        self.client.get("/api/v1/models", name="GET /api/v1/models")

    @task(1)
    def page(self) -> None:
        self.client.get("/", name="GET /")

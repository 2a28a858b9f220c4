"""The result cache: a worker's top list by sha256 of the upload and the model version that made it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from imgclf_contract import keys


@dataclass(frozen=True)
class CachedResult:
    model_name: str
    model_version: str
    top: list[tuple[int, float]]  # (class index, probability), best first


class ResultCache:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    @staticmethod
    def key(sha256: str, name: str, version: str) -> str:
        return keys.cache(name, version, sha256)

    @staticmethod
    def parse(raw: bytes, name: str, version: str) -> CachedResult:
        return CachedResult(name, version, [(int(i), float(p)) for i, p in json.loads(raw)])

    def get(self, sha256: str, name: str, version: str) -> CachedResult | None:
        """The answer cached for this upload by this model version (never asks Redis when the cache is off)."""
        if not self.enabled:
            return None
        raw = self.client.get(self.key(sha256, name, version))
        return self.parse(raw, name, version) if raw is not None else None

    def put(self, pipe: Pipeline, sha256: str, name: str, version: str, top: list[tuple[int, float]]) -> None:
        """Adds the write to ``pipe`` (a pipeline of this cache's Redis), which the caller sends."""
        if self.enabled and top:
            pipe.set(self.key(sha256, name, version), json.dumps(top), ex=self.ttl_s)

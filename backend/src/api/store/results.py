"""The result cache: a worker's top list by sha256 of the upload and the model version that made it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

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

    def get(self, sha256: str, versions: list[tuple[str, str]]) -> CachedResult | None:
        """The first of ``versions`` (name, version) with an answer cached for this upload."""
        if not self.enabled:
            return None
        for name, version in versions:
            raw = self.client.get(keys.cache(name, version, sha256))
            if raw is not None:
                return CachedResult(name, version, [(int(i), float(p)) for i, p in json.loads(raw)])
        return None

    def put(self, sha256: str, model_name: str, model_version: str, top: list[tuple[int, float]]) -> None:
        if self.enabled and top:
            self.client.set(keys.cache(model_name, model_version, sha256), json.dumps(top), ex=self.ttl_s)

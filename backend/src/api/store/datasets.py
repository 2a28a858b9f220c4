"""Datasets kept in Redis: per upload (sha256) its label and its base-model embedding.

Durable like feedback (the persistent Redis, AOF): a dataset survives a restart.
The image bytes themselves are kept only with KEEP_DATASET_IMAGES.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import redis

from imgclf_contract import keys


class Datasets:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def meta(self, name: str) -> dict | None:
        raw = self.client.hgetall(keys.dataset(name))
        return {k.decode(): v.decode() for k, v in raw.items()} if raw else None

    def create(self, name: str, base: str, base_version: str) -> bool:
        """False when it already exists (then nothing changes)."""
        created = datetime.now(UTC).isoformat(timespec="seconds")
        fields = {"name": name, "base": base, "base_version": base_version, "created_at": created}
        if not self.client.hsetnx(keys.dataset(name), "name", name):
            return False
        pipe = self.client.pipeline()
        pipe.hset(keys.dataset(name), mapping=fields)
        pipe.sadd(keys.DATASETS_SET, name)
        pipe.execute()
        return True

    def names(self) -> list[str]:
        return sorted(n.decode() for n in self.client.smembers(keys.DATASETS_SET))

    def labels_of(self, name: str) -> dict[str, str]:
        """sha256 -> label of every image."""
        raw = self.client.hgetall(keys.dataset_labels(name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def counts(self, name: str) -> dict[str, int]:
        return dict(sorted(Counter(self.labels_of(name).values()).items()))

    def label_of(self, name: str, sha256: str) -> str | None:
        raw = self.client.hget(keys.dataset_labels(name), sha256)
        return raw.decode() if raw is not None else None

    def add(self, name: str, sha256: str, label: str, embedding: bytes, image: bytes | None) -> None:
        pipe = self.client.pipeline()
        pipe.hset(keys.dataset_labels(name), sha256, label)
        pipe.hset(keys.dataset_embeddings(name), sha256, embedding)
        if image is not None:
            pipe.set(keys.dataset_image(name, sha256), image)
        pipe.execute()

    def relabel(self, name: str, sha256: str, label: str) -> None:
        self.client.hset(keys.dataset_labels(name), sha256, label)

    def remove(self, name: str, sha256s: list[str]) -> int:
        if not sha256s:
            return 0
        pipe = self.client.pipeline()
        pipe.hdel(keys.dataset_labels(name), *sha256s)
        pipe.hdel(keys.dataset_embeddings(name), *sha256s)
        pipe.delete(*(keys.dataset_image(name, sha) for sha in sha256s))
        return int(pipe.execute()[0])

    def delete(self, name: str) -> None:
        images = [keys.dataset_image(name, sha) for sha in self.labels_of(name)]
        pipe = self.client.pipeline()
        pipe.delete(keys.dataset(name), keys.dataset_labels(name), keys.dataset_embeddings(name), *images)
        pipe.srem(keys.DATASETS_SET, name)
        pipe.execute()

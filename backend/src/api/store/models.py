"""The models the API knows, which live workers serve each, and which version answers a request.

Workers publish a record per model version (``keys.model``), list it in
``keys.MODELS_SET`` (in the queue; the trainer does the same for custom models in the store)
and stamp themselves in the version's ``keys.serving`` set
with every heartbeat; the API reads only these, so it needs no model files.
A model is *known* once a worker has published it (the configured default
always is); it is *available* while a live worker serves one of its versions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from api.store.workers import Workers
from imgclf_contract import keys
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.liveness import oldest_live_stamp_ms
from imgclf_contract.model_record import ModelRecord, parse_model_ref, version_key

SNAPSHOT_TTL_S = 0.5  # how long one process reuses its view of the models (admission re-checks atomically)


@dataclass(frozen=True)
class ModelVersion:
    record: ModelRecord
    workers: list[str]  # ids of the live workers serving this version


@dataclass(frozen=True)
class ModelEntry:
    """One model name: its versions (oldest first) and whether it is the default."""

    name: str
    default: bool
    versions: list[ModelVersion]
    pinned: str = ""  # a custom model rolled back: this version answers the bare name

    @property
    def custom(self) -> bool:
        return self.latest.record.is_custom

    @property
    def latest(self) -> ModelVersion:
        return self.versions[-1]

    @property
    def workers(self) -> list[str]:
        return sorted({w for v in self.versions for w in v.workers})

    def answering(self, version: str = "") -> ModelVersion | None:
        """The version that answers: the one asked for, else the pinned one, else the newest one served."""
        served = [v for v in self.versions if v.workers and version in ("", v.record.version)]
        pinned = [v for v in served if v.record.version == self.pinned] if not version else []
        return (pinned or served or [None])[-1]


class ModelCatalogue:
    def __init__(
        self, client: redis.Redis, store: redis.Redis, workers: Workers, stale_s: float, default_model: str
    ) -> None:
        self.client = client  # the queue: base models published by workers, who serves what
        self.store = store  # custom models (trainer) and their rollback pins
        self.workers = workers  # reads (and keeps) the published records
        self.stale_s = stale_s
        self.default_model = default_model
        self._snapshot: tuple[float, list[ModelEntry]] = (0.0, [])

    def _published(self) -> dict[str, list[str]]:
        """Model name -> published versions, oldest first."""
        versions: dict[str, list[str]] = {self.default_model: []}
        refs = self.client.smembers(keys.MODELS_SET) | self.store.smembers(keys.MODELS_SET)
        for ref in sorted(m.decode() for m in refs):
            name, _, version = ref.partition(":")
            versions.setdefault(name, []).append(version)
        return {name: sorted(v, key=version_key) for name, v in versions.items()}

    def _serving(self, pairs: list[tuple[str, str]]) -> list[list[str]]:
        """Live worker ids per (name, version), one round trip."""
        oldest = oldest_live_stamp_ms(self.client, self.stale_s)
        pipe = self.client.pipeline(transaction=False)
        for name, version in pairs:
            pipe.zrangebyscore(keys.serving(name, version), oldest, "+inf")
        return [sorted(w.decode() for w in ids) for ids in pipe.execute()]

    def entries(self, fresh: bool = False) -> list[ModelEntry]:
        """Every known model with a published version, the default first (reused for SNAPSHOT_TTL_S)."""
        at, entries = self._snapshot
        if fresh or time.monotonic() - at > SNAPSHOT_TTL_S:
            entries = self._read_entries()
            self._snapshot = (time.monotonic(), entries)
        return entries

    def _read_entries(self) -> list[ModelEntry]:
        """A custom model is served by the workers that serve its base model version."""
        published = self._published()
        records = {
            name: [r for v in versions if (r := self.workers.model_record(name, v)) is not None]
            for name, versions in published.items()
        }
        pairs = sorted({r.backbone for found in records.values() for r in found})
        workers = dict(zip(pairs, self._serving(pairs), strict=True))
        custom = [name for name, found in records.items() if found and found[-1].is_custom]
        pins = dict(zip(custom, self.store.mget([keys.head_pin(n) for n in custom]), strict=True)) if custom else {}
        entries = [
            ModelEntry(
                name,
                name == self.default_model,
                [ModelVersion(r, workers[r.backbone]) for r in found],
                pinned=(pins.get(name) or b"").decode(),
            )
            for name, found in records.items()
            if found
        ]
        return sorted(entries, key=lambda e: (e.custom, not e.default, e.name))

    def entry(self, name: str, fresh: bool = False) -> ModelEntry:
        """One known model, or a 404 naming the known ones (never decided on a stale view)."""
        entries = self.entries(fresh)
        for entry in entries:
            if entry.name == name:
                return entry
        if not fresh:
            return self.entry(name, fresh=True)
        if name == self.default_model:  # configured but never published: no worker has served it yet
            raise _unavailable(name)
        known = sorted({self.default_model, *(e.name for e in entries)})
        raise ServiceError(
            ErrorCode.NOT_FOUND,
            f"There is no model named {name!r}. Known models: {', '.join(known)}.",
            {"model": name, "known": known},
        )

    def resolve(self, ref: str | None) -> ModelRecord:
        """The record of the version that will answer ``ref`` (name or name:version; None: the default).

        400 for a malformed reference, 404 for an unknown name or version, 503 when no live
        worker serves it.
        """
        try:
            name, version = parse_model_ref(self.default_model if ref is None else ref)
        except ValueError as exc:
            raise ServiceError(ErrorCode.INVALID_REQUEST, f"Invalid field 'model': {exc}", {"field": "model"}) from None
        entry = self.entry(name)
        if entry.answering(version) is None:  # a refusal is never decided on a stale view
            entry = self.entry(name, fresh=True)
        versions = [v.record.version for v in entry.versions]
        if version and version not in versions:
            raise ServiceError(
                ErrorCode.NOT_FOUND,
                f"Model {name} has no version {version}. Versions: {', '.join(versions)}.",
                {"model": name, "version": version, "versions": versions},
            )
        answering = entry.answering(version)
        if answering is None:
            raise _unavailable(name, version)
        return answering.record


def _unavailable(name: str, version: str = "") -> ServiceError:
    shown = f"{name}:{version}" if version else name
    return ServiceError(
        ErrorCode.SERVICE_UNAVAILABLE,
        f"No inference worker serving {shown} is running right now; try again shortly.",
        {"missing": "workers", "model": shown},
    )

"""Configuration from environment variables: the parser, and the settings both services share.

Each service's own settings extend ``SharedSettings`` beside its code
(``api.settings.ApiSettings``, ``ml_worker.settings.WorkerSettings``); every
variable is parsed and validated by ``from_env`` here and documented in the
README's configuration table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar, Self

from imgclf_contract.model_record import NAME_PATTERN


class ConfigError(ValueError):
    """A configuration variable has a value we cannot use."""


@dataclass(frozen=True)
class SharedSettings:
    """What the API and the workers must agree on: where Redis is, the limits and the deadlines."""

    redis_url: str = "redis://127.0.0.1:6379/0"  # the store: feedback, predictions, kept images (persistent)
    queue_redis_url: str = ""  # jobs, replies, heartbeats, rate limits (never persisted); empty: REDIS_URL
    cache_redis_url: str = ""  # the result cache (evicts least recently used); empty: the queue's
    redis_password: str = ""
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_decode_bytes: int = 200_000_000  # what one decode may allocate (bitmap, tiles, coefficients)
    request_timeout_s: float = 10.0
    heartbeat_stale_s: float = 5.0  # a worker without a heartbeat for this long is not live
    log_level: str = "INFO"
    default_model: str = "efficientnet_lite0_int8"  # answers requests that name no model (README: the int8 decision)

    # Names validate() checks to be > 0 and >= 0; subclasses extend these tuples.
    POSITIVE: ClassVar[tuple[str, ...]] = (
        "max_upload_bytes",
        "max_pixels",
        "max_decode_bytes",
        "request_timeout_s",
        "heartbeat_stale_s",
    )
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Every field from its upper-case variable; unset or blank means the default."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.name, raw.strip(), f.default)
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def queue_url(self) -> str:
        return self.queue_redis_url or self.redis_url

    @property
    def cache_url(self) -> str:
        return self.cache_redis_url or self.queue_url

    def validate(self) -> None:
        if not re.fullmatch(NAME_PATTERN, self.default_model):
            raise ConfigError(f"DEFAULT_MODEL must be a model name (no version), got {self.default_model!r}")
        for name in self.POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.upper()} must be positive, got {getattr(self, name)}")
        for name in self.NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.upper()} must be zero or more, got {getattr(self, name)}")


def _parse(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
        if isinstance(default, tuple):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        return raw
    except ValueError as exc:
        raise ConfigError(f"{name.upper()}={raw!r}: {exc}") from None

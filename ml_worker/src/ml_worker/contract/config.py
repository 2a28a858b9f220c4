"""All configuration, read from environment variables in one place.

Both services call ``Settings.from_env()``; each variable is parsed and
validated here and documented in the README's configuration table.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from ml_worker.contract.model_record import parse_model_ref

_CHECKOUT = Path(__file__).resolve().parents[4]
_DEFAULT_ARTIFACTS = _CHECKOUT / "ml_worker" / "artifacts"
# Evaluation photos live beside the checkout (never copied into it): <checkout>/../shared/datasets/...
_DEFAULT_IMAGENET_SAMPLE = _CHECKOUT.parent / "shared" / "datasets" / "imagenet-sample-500"
BACKENDS = ("litert", "tensorflow")


class ConfigError(ValueError):
    """A configuration variable has a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: str = ""
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_batch: int = 8
    batch_wait_ms: int = 5
    max_queue: int = 256
    request_timeout_s: float = 10.0
    claim_idle_ms: int = 3000
    cache_ttl_s: int = 86_400
    prediction_ttl_s: int = 7 * 86_400
    heartbeat_interval_s: float = 1.0
    heartbeat_stale_s: float = 5.0
    keep_feedback_images: bool = False
    artifacts_dir: Path = _DEFAULT_ARTIFACTS
    models: tuple[str, ...] = ()  # worker: "name" or "name:version" each; empty: every model built under ARTIFACTS_DIR
    default_model: str = "efficientnet_lite0"  # API: answers requests that name no model
    imagenet_sample_dir: Path = _DEFAULT_IMAGENET_SAMPLE  # labelled photos for measured accuracy
    backend: str = "litert"
    num_threads: int = 2  # inference threads for a lone image (latency while idle)
    batch_num_threads: int = 1  # LiteRT threads for batches: jobs are queueing, the API's decoders want the cores
    worker_id: str = ""  # empty: <hostname>-<pid>
    api_processes: int = 1  # gunicorn processes; one suffices (Pillow decodes outside the GIL)
    decode_concurrency: int = 2  # images decoded at once per API process, first come first served
    api_threads: int = 64  # threads per process; each waiting request holds one (nginx admits this many)
    rate_limit_per_minute: int = 0  # 0: off
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    fault_inference_delay_ms: int = 0  # fault tests only: hold each batch this long before inference

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.name, raw.strip(), f.default)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = (
            "max_upload_bytes", "max_pixels", "max_batch", "max_queue", "request_timeout_s",
            "claim_idle_ms", "heartbeat_interval_s", "heartbeat_stale_s", "prediction_ttl_s",
            "num_threads", "batch_num_threads", "api_processes", "api_threads", "decode_concurrency",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.upper()} must be positive, got {getattr(self, name)}")
        for name in ("batch_wait_ms", "cache_ttl_s", "rate_limit_per_minute", "fault_inference_delay_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.upper()} must be zero or more, got {getattr(self, name)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"BACKEND must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for ref in (*self.models, self.default_model):
            try:
                parse_model_ref(ref)
            except ValueError as exc:
                raise ConfigError(f"MODELS/DEFAULT_MODEL: {exc}") from None
        if ":" in self.default_model:
            raise ConfigError("DEFAULT_MODEL is a model name; the newest live version answers")
        if self.heartbeat_stale_s <= self.heartbeat_interval_s:
            raise ConfigError("HEARTBEAT_STALE_S must exceed HEARTBEAT_INTERVAL_S")
        if self.claim_idle_ms >= self.request_timeout_s * 1000:
            raise ConfigError("CLAIM_IDLE_MS must be shorter than REQUEST_TIMEOUT_S")

    @property
    def resolved_worker_id(self) -> str:
        return self.worker_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def reply_ttl_s(self) -> int:
        """How long an answer waits for its API request: past the deadline, then it expires."""
        return int(self.request_timeout_s) + 5

    @property
    def cache_enabled(self) -> bool:
        return self.cache_ttl_s > 0


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

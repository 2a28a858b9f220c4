"""The worker's own settings, beside the ones it shares with the API (``imgclf_contract.settings``)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from imgclf_contract.model_record import parse_model_ref
from imgclf_contract.settings import ConfigError, SharedSettings

DEFAULT_ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# Evaluation photos live beside the checkout (never copied into it): <checkout>/../shared/datasets/...
DEFAULT_IMAGENET_SAMPLE = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "imagenet-sample-500"
BACKENDS = ("litert", "tensorflow")


@dataclass(frozen=True)
class WorkerSettings(SharedSettings):
    max_batch: int = 8
    batch_wait_ms: int = 5
    claim_idle_ms: int = 3000
    heartbeat_interval_s: float = 1.0
    artifacts_dir: Path = DEFAULT_ARTIFACTS
    models: tuple[str, ...] = ()  # "name" or "name:version" each; empty: every model built under ARTIFACTS_DIR
    imagenet_sample_dir: Path = DEFAULT_IMAGENET_SAMPLE  # labelled photos the build measures accuracy on
    backend: str = "litert"
    num_threads: int = 2  # inference threads for a lone image (latency while idle)
    batch_num_threads: int = 1  # LiteRT threads for batches: jobs are queueing, the API's decoders want the cores
    parallel_batches: int = 1  # lanes: the first, and helpers that infer a full waiting batch beside it
    worker_id: str = ""  # empty: <hostname>-<pid>

    POSITIVE: ClassVar[tuple[str, ...]] = (
        *SharedSettings.POSITIVE,
        "max_batch",
        "claim_idle_ms",
        "heartbeat_interval_s",
        "num_threads",
        "batch_num_threads",
        "parallel_batches",
    )
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("batch_wait_ms",)

    def validate(self) -> None:
        super().validate()
        if self.backend not in BACKENDS:
            raise ConfigError(f"BACKEND must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for ref in self.models:
            try:
                parse_model_ref(ref)
            except ValueError as exc:
                raise ConfigError(f"MODELS: {exc}") from None
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


@dataclass(frozen=True)
class TrainerSettings(SharedSettings):
    """The trainer process (``python -m ml_worker.trainer``): where base models are, how nice it runs."""

    artifacts_dir: Path = DEFAULT_ARTIFACTS  # the base models' model.keras, for exports
    trainer_nice: int = 19  # added niceness: training never competes with serving for the CPU

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("trainer_nice",)

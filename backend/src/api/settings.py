"""The API's own settings, beside the ones it shares with the workers (``imgclf_contract.settings``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from imgclf_contract.settings import ConfigError, SharedSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ApiSettings(SharedSettings):
    max_queue: int = 256
    cache_ttl_s: int = 86_400
    prediction_ttl_s: int = 7 * 86_400
    keep_feedback_images: bool = False
    keep_dataset_images: bool = False  # keep dataset uploads' bytes beside their embeddings
    max_dataset_images: int = 20_000  # images in one dataset
    api_processes: int = 1  # gunicorn processes; one suffices (Pillow decodes outside the GIL)
    decode_concurrency: int = 2  # images decoded at once per API process, first come first served
    api_threads: int = 64  # threads per process; each waiting request holds one (nginx admits this many)
    rate_limit_per_minute: int = 0  # 0: off
    feedback_rate_limit_per_minute: int = 60  # feedback writes per client, on top of the above; 0: off
    # Addresses or networks (CIDR): under docker-compose nginx gets whatever address the network hands out.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()

    POSITIVE: ClassVar[tuple[str, ...]] = (
        *SharedSettings.POSITIVE,
        "max_queue",
        "prediction_ttl_s",
        "api_processes",
        "api_threads",
        "decode_concurrency",
        "max_dataset_images",
    )
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("cache_ttl_s", "rate_limit_per_minute", "feedback_rate_limit_per_minute")

    def validate(self) -> None:
        super().validate()
        _ = self.trusted_networks  # a typo in TRUSTED_PROXIES fails at start-up, not per request

    @cached_property
    def trusted_networks(self) -> tuple[Network, ...]:
        try:
            return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"TRUSTED_PROXIES: {exc}") from None

    @property
    def cache_enabled(self) -> bool:
        return self.cache_ttl_s > 0

"""The API's own settings: documented defaults and the checks that stop a bad start."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import fields
from pathlib import Path

import pytest

from api.settings import ApiSettings
from imgclf_contract.settings import ConfigError


def test_defaults_match_the_documented_ones():
    s = ApiSettings.from_env({})
    assert (s.max_queue, s.cache_ttl_s, s.prediction_ttl_s) == (256, 86_400, 7 * 86_400)
    assert (s.api_processes, s.api_threads, s.decode_concurrency) == (1, 64, 2)
    assert s.api_keys == () and s.cors_origins == () and s.rate_limit_per_minute == 0
    assert not s.keep_feedback_images and s.cache_enabled
    assert s.trusted_networks == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


def test_values_are_parsed_by_type():
    s = ApiSettings.from_env(
        {"KEEP_FEEDBACK_IMAGES": "yes", "API_KEYS": "a, b,,", "CACHE_TTL_S": "0", "TRUSTED_PROXIES": "10.0.0.0/8"}
    )
    assert s.keep_feedback_images is True and s.api_keys == ("a", "b") and not s.cache_enabled
    assert s.trusted_networks == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_QUEUE": "0"}, "MAX_QUEUE must be positive"),
        ({"KEEP_FEEDBACK_IMAGES": "maybe"}, "KEEP_FEEDBACK_IMAGES"),
        ({"RATE_LIMIT_PER_MINUTE": "-5"}, "RATE_LIMIT_PER_MINUTE must be zero or more"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,nginx"}, "TRUSTED_PROXIES"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        ApiSettings.from_env(env)


def test_the_readme_documents_every_setting_of_both_services():
    from ml_worker.settings import TrainerSettings, WorkerSettings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.MULTILINE))
    services = (ApiSettings, WorkerSettings, TrainerSettings)
    assert documented == {f.name.upper() for settings in services for f in fields(settings)}

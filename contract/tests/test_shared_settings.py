"""The settings parser every service uses, and the settings API and workers share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from imgclf_contract.settings import ConfigError, SharedSettings


@dataclass(frozen=True)
class _Example(SharedSettings):
    """A service's settings with one field of each type the parser knows."""

    flag: bool = False
    count: int = 3
    names: tuple[str, ...] = ()
    folder: Path = Path("/default")

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("count",)


def test_shared_defaults_match_the_documented_ones():
    s = SharedSettings.from_env({})
    assert (s.redis_url, s.redis_password) == ("redis://127.0.0.1:6379/0", "")
    assert (s.max_upload_bytes, s.max_pixels) == (10 * 1024 * 1024, 40_000_000)
    assert (s.request_timeout_s, s.heartbeat_stale_s, s.log_level) == (10.0, 5.0, "INFO")


def test_values_are_parsed_by_the_type_of_their_default():
    s = _Example.from_env(
        {"FLAG": "yes", "COUNT": "16", "NAMES": "a, b,,", "FOLDER": "/x", "REQUEST_TIMEOUT_S": " 4.5 "}
    )
    assert s.flag is True and s.count == 16 and s.names == ("a", "b") and s.folder == Path("/x")
    assert s.request_timeout_s == 4.5


def test_blank_means_the_default():
    assert _Example.from_env({"COUNT": " ", "MAX_PIXELS": ""}) == _Example()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COUNT": "eight"}, "COUNT"),
        ({"COUNT": "-1"}, "COUNT must be zero or more"),
        ({"FLAG": "maybe"}, "FLAG"),
        ({"MAX_UPLOAD_BYTES": "0"}, "MAX_UPLOAD_BYTES must be positive"),
        ({"HEARTBEAT_STALE_S": "-2"}, "HEARTBEAT_STALE_S must be positive"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        _Example.from_env(env)

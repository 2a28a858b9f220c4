"""Sizes in messages read as people read them; frontend/js/format.js's formatBytes agrees (its unit tests)."""

from __future__ import annotations

import pytest

from api.classify import human_size


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (300_000, "293 KB"),
        (10 * 2**20, "10 MB"),
        (11_848_933, "11.3 MB"),
        (5 * 2**30, "5 GB"),
    ],
)
def test_binary_units_with_one_decimal_below_ten(size: int, text: str) -> None:
    assert human_size(size) == text

"""loadtest/bench_preprocess.py: the contract at a git revision beside today's, timed alike."""

from __future__ import annotations

import subprocess

import pytest

from imgclf_contract import preprocess as current
from loadtest.bench_preprocess import ROOT, interleaved, job_bytes, module_at


@pytest.fixture(scope="module")
def at_head():
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout: the benchmark reads the earlier contract from git")
    return module_at("HEAD")


def test_the_revision_is_loaded_beside_todays_module(at_head):
    assert at_head is not current and at_head.__name__ == "preprocess_before"
    assert at_head.resize_target(224) == current.resize_target(224) == 256


def test_both_sides_make_the_job_bytes_and_are_timed(at_head, golden_dir):
    photos = [(golden_dir / name).read_bytes() for name in ("rocket.jpg", "chelsea.png")]
    before, after = job_bytes(at_head, 224), job_bytes(current, 224)
    assert all(len(before(p)) == len(after(p)) == 224 * 224 * 3 for p in photos)
    old_ms, new_ms = interleaved(photos, before, after)
    assert 0 < old_ms < 1000 and 0 < new_ms < 1000

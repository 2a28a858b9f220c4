"""Small files that declare big images: what one decode may allocate is bounded from the header
(MAX_DECODE_BYTES, sane TIFF tiles), the work after the decode makes no full-size copies, and
the API gives the memory back after a burst."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
from PIL import Image

from api.settings import ApiSettings as Settings
from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.preprocess import decode_bytes, preprocess
from testsupport import badinput

ROOT = Path(__file__).resolve().parents[2]  # the checkout: testsupport is importable from it
MB = 1_000_000
SIDE = 6300
PEAK_TARGET = 700 * MB  # all API processes with DECODE_CONCURRENCY bombs in flight (issue #12)

_PEAK_SCRIPT = """
from imgclf_contract.preprocess import preprocess
from testsupport import badinput

def hwm():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))

data = badinput.{builder}()
before = hwm()
preprocess(data, 40_000_000)
print(hwm() - before)
"""


def preprocess_growth(builder: str) -> int:
    """Peak RSS growth of a fresh process preprocessing one bomb (bytes)."""
    script = _PEAK_SCRIPT.format(builder=builder)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.parametrize(
    ("builder", "bitmap"), [("grey16_bomb_png", SIDE * SIDE * 2), ("rgba_bomb_png", SIDE * SIDE * 4)]
)
def test_bomb_preprocessing_stays_near_its_decoded_bitmap(builder: str, bitmap: int):
    """16-bit greyscale once went through float64 (1.1 GB for a 90 kB file), RGBA through full-size
    compositing (831 MB): now the peak is the decoded bitmap plus at most half of it again."""
    growth = preprocess_growth(builder)
    assert growth < 1.5 * bitmap, f"{builder}: grew {growth / MB:.0f} MB for a {bitmap / MB:.0f} MB bitmap"


def test_absurd_tiff_tiles_are_refused_from_the_header():
    """A 100x100 TIFF declaring 32768x32768 tiles made libtiff allocate 1 GB before its 415."""
    started = time.perf_counter()
    with pytest.raises(ServiceError) as info:
        preprocess(badinput.tiled_tiff_bomb(), 40_000_000)
    assert info.value.code == ErrorCode.UNPROCESSABLE_IMAGE
    assert info.value.details["tile_width"] == 32768
    assert time.perf_counter() - started < 0.5
    assert preprocess(badinput.tiled_tiff_bomb(256), 40_000_000).tensor.shape == (224, 224, 3)  # sane tiles pass


def test_decode_budget_refuses_from_the_header_with_details():
    with pytest.raises(ServiceError) as info:
        preprocess(badinput.rgba_bomb_png(), 40_000_000, max_decode_bytes=100 * MB)
    assert info.value.code == ErrorCode.UNPROCESSABLE_IMAGE
    assert info.value.details["decode_bytes"] == SIDE * SIDE * 4
    assert info.value.details["max_decode_bytes"] == 100 * MB
    assert "MB" in info.value.message


def test_progressive_jpeg_counts_its_full_size_coefficients():
    """Draft decoding shrinks the bitmap, but a progressive JPEG keeps every coefficient."""
    photo = Image.fromarray(np.full((3000, 4000, 3), 90, np.uint8))
    baseline, progressive = (badinput.encode(photo, "JPEG", progressive=flag) for flag in (False, True))
    sizes = {}
    for name, data in (("baseline", baseline), ("progressive", progressive)):
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (256, 256))
            sizes[name] = decode_bytes(image, 4000, 3000)
    assert sizes["baseline"] < 4000 * 3000 // 4  # the draft bitmap only
    assert sizes["progressive"] >= 4000 * 3000 * 2 * 1.5  # 4:2:0: 1.5 samples per pixel, 2 bytes each


def test_max_decode_bytes_is_configurable():
    assert Settings.from_env({"MAX_DECODE_BYTES": "123456789"}).max_decode_bytes == 123456789
    assert Settings().max_decode_bytes >= 40_000_000 * 4  # a 40 MP RGBA bitmap fits by default


def _rss(pid: int) -> int:
    master = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [master, *master.children(recursive=True)])


class RssSampler(threading.Thread):
    """Peak resident memory of the API (master and workers), sampled every 10 ms."""

    def __init__(self, pid: int, max_s: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.max_s, self.peak, self.stop = pid, max_s, 0, threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, _rss(self.pid))
            time.sleep(0.01)


@pytest.mark.integration
def test_api_memory_bounded_under_bombs_and_given_back(stack_factory):
    """DECODE_CONCURRENCY x 3 bombs at once: all API processes stay under 700 MB (once 2.2-2.5 GB),
    and after the burst the API returns to near its starting memory (once stuck at 611-626 MB)."""
    stack = stack_factory(
        "decode-memory", env={"REQUEST_TIMEOUT_S": "60"}
    )  # a busy machine must not turn this into 504s
    url = f"{stack.config.url}/api/v1/predictions"
    concurrency = Settings().decode_concurrency
    bombs = [badinput.upload(b(), "bomb.png") for b in (badinput.grey16_bomb_png, badinput.rgba_bomb_png)]
    requests.post(url, files={"image": ("c.png", badinput.golden_bytes("coffee.png"), "image/png")}, timeout=30)
    start = _rss(stack.pid("api"))
    sampler = RssSampler(stack.pid("api"), max_s=120)
    sampler.start()
    with ThreadPoolExecutor(concurrency * 3) as pool:
        statuses = list(pool.map(lambda i: bombs[i % 2].post(url, timeout=60).status_code, range(concurrency * 3)))
    sampler.stop.set()
    sampler.join()
    time.sleep(1.0)
    after = _rss(stack.pid("api"))
    print(f"\nAPI RSS: start {start / MB:.0f} MB, peak {sampler.peak / MB:.0f} MB, 1 s after {after / MB:.0f} MB")
    assert statuses == [200] * len(statuses)
    assert sampler.peak <= PEAK_TARGET, f"peak {sampler.peak / MB:.0f} MB"
    assert after <= start + 60 * MB, f"start {start / MB:.0f} MB, after the burst {after / MB:.0f} MB"

"""Property tests of the preprocessing contract: whatever arrives, the answer is the
model's tensor or a clean ServiceError (415/422 with a message), never another exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgclf_contract.errors import ServiceError
from imgclf_contract.preprocess import INPUT_SIZE, MIN_SIDE, preprocess

MAX_PIXELS = 40_000_000
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Which accepted formats Pillow can write each mode to without converting it first.
FORMATS_FOR_MODE: dict[str, tuple[str, ...]] = {
    "1": ("PNG", "GIF", "BMP", "TIFF", "JPEG"),
    "L": ("PNG", "GIF", "BMP", "TIFF", "JPEG", "WEBP"),
    "LA": ("PNG", "TIFF"),
    "P": ("PNG", "GIF", "BMP", "TIFF"),
    "PT": ("PNG", "GIF"),  # P with a transparent palette entry
    "RGB": ("PNG", "GIF", "BMP", "TIFF", "JPEG", "WEBP"),
    "RGBA": ("PNG", "TIFF", "WEBP"),
    "CMYK": ("JPEG", "TIFF"),
    "I;16": ("PNG", "TIFF"),
    "I": ("TIFF",),
    "F": ("TIFF",),
    "YCbCr": ("JPEG", "TIFF"),
}


def synthetic(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    """A noise image of any mode ("PT": palette with transparency), reproducible from the seed."""
    rng = np.random.default_rng(seed)
    base = "P" if mode == "PT" else mode
    raw = rng.bytes(len(Image.new(base, size).tobytes()))
    if base == "F":  # random float bits include NaN and inf; real float TIFFs hold finite values
        raw = (rng.random(size[0] * size[1], dtype=np.float32) * 255).tobytes()
    image = Image.frombytes(base, size, raw)
    if base == "P":
        image.putpalette(rng.bytes(768))
    if mode == "PT":
        image.info["transparency"] = int(rng.integers(256))
    return image


@st.composite
def encoded_images(draw: st.DrawFn) -> tuple[bytes, str, tuple[int, int]]:
    mode = draw(st.sampled_from(sorted(FORMATS_FOR_MODE)))
    fmt = draw(st.sampled_from(FORMATS_FOR_MODE[mode]))
    size = (draw(st.integers(1, 600)), draw(st.integers(1, 600)))
    image = synthetic(mode, size, draw(st.integers(0, 2**32 - 1)))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue(), fmt, size


def assert_clean_refusal(exc: ServiceError, statuses: tuple[int, ...]) -> None:
    assert exc.status in statuses, exc
    assert exc.message.strip()


def assert_tensor(tensor: np.ndarray) -> None:
    assert tensor.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert tensor.dtype == np.uint8
    assert tensor.flags.c_contiguous


@FUZZ
@given(encoded_images())
def test_any_valid_image_gives_tensor_or_size_refusal(sample: tuple[bytes, str, tuple[int, int]]):
    data, fmt, (width, height) = sample
    if min(width, height) < MIN_SIDE:
        with pytest.raises(ServiceError) as refused:
            preprocess(data, MAX_PIXELS)
        assert_clean_refusal(refused.value, (422,))
        return
    result = preprocess(data, MAX_PIXELS)
    assert_tensor(result.tensor)
    assert (result.format, result.width, result.height) == (fmt, width, height)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_are_unsupported(data: bytes):
    with pytest.raises(ServiceError) as refused:
        preprocess(data, MAX_PIXELS)
    assert_clean_refusal(refused.value, (415,))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt TIFF tags it skips
@FUZZ
@given(encoded_images(), st.data())
def test_damaged_image_gives_tensor_or_clean_error(sample: tuple[bytes, str, tuple[int, int]], data: st.DataObject):
    """Truncated or byte-flipped files of every format: decoded, or refused as 415/422."""
    raw = bytearray(sample[0])
    raw = raw[: data.draw(st.integers(0, len(raw)), label="keep")]
    for _ in range(data.draw(st.integers(0, 8), label="flips")):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    try:
        assert_tensor(preprocess(bytes(raw), MAX_PIXELS).tensor)
    except ServiceError as exc:
        assert_clean_refusal(exc, (415, 422))

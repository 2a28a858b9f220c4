"""Unit tests of the preprocessing contract's individual decisions."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.preprocess import INPUT_SIZE, preprocess, resize_and_crop, to_rgb


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def test_output_is_a_contiguous_uint8_tensor(golden_dir):
    result = preprocess((golden_dir / "coffee.png").read_bytes(), 40_000_000)
    assert result.tensor.shape == (INPUT_SIZE, INPUT_SIZE, 3) and result.tensor.dtype == np.uint8
    assert result.tensor.flags["C_CONTIGUOUS"]
    assert (result.format, result.width, result.height) == ("PNG", 600, 400)


def test_the_tensor_is_a_view_of_the_job_bytes(golden_dir):
    """One buffer from Pillow to the job: the tensor reads the payload's bytes, it is no copy of them."""
    result = preprocess((golden_dir / "rocket.jpg").read_bytes(), 40_000_000, size=260)
    assert isinstance(result.pixels, bytes) and len(result.pixels) == 260 * 260 * 3
    assert result.tensor.shape == (260, 260, 3) and result.tensor.base is not None
    assert np.shares_memory(result.tensor, np.frombuffer(result.pixels, np.uint8))
    assert not result.tensor.flags.writeable  # nobody can change the payload through the view


def test_an_rgb_image_is_not_converted_again(golden_dir):
    rgb = Image.open(golden_dir / "rocket.jpg")
    assert rgb.mode == "RGB" and to_rgb(rgb) is rgb
    grey = rgb.convert("L")
    assert to_rgb(grey).mode == "RGB" and np.array_equal(np.asarray(to_rgb(grey))[..., 1], np.asarray(grey))


def test_resize_keeps_aspect_and_crops_the_centre():
    # Left third red, middle green, right third blue: the centre crop of a 3:1 image is all green.
    array = np.zeros((300, 900, 3), np.uint8)
    array[:, :300, 0] = array[:, 300:600, 1] = array[:, 600:, 2] = 255
    out = np.asarray(resize_and_crop(Image.fromarray(array)))
    assert out.shape == (224, 224, 3)
    assert out[:, :, 1].min() > 200 and out[:, :, 0].max() < 60 and out[:, :, 2].max() < 60


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    assert np.asarray(to_rgb(rgba)).min() == 255
    half = Image.new("LA", (64, 64), (0, 128))
    assert abs(int(np.asarray(to_rgb(half))[0, 0, 0]) - 127) <= 1


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    array = np.full((64, 64), 32768, np.uint16)
    image = Image.fromarray(array)
    assert image.mode == "I;16"
    value = np.asarray(to_rgb(image))[0, 0, 0]
    assert 126 <= value <= 129


def test_large_jpeg_uses_draft_decoding_within_tolerance(golden_dir):
    """Draft (DCT-scaled) decoding of a big JPEG must stay close to a full decode."""
    photo = Image.open(golden_dir / "coffee.png").convert("RGB").resize((2400, 1600), Image.Resampling.BICUBIC)
    data = encode(photo, "JPEG", quality=92)
    fast = preprocess(data, 40_000_000).tensor.astype(np.int16)
    full = np.asarray(resize_and_crop(Image.open(io.BytesIO(data)).convert("RGB")), dtype=np.int16)
    assert np.abs(fast - full).mean() < 3.0


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        (b"just some text", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        (encode(Image.new("RGB", (15, 400)), "PNG"), ErrorCode.UNPROCESSABLE_IMAGE),
        (encode(Image.new("RGB", (7000, 6000)), "PNG"), ErrorCode.UNPROCESSABLE_IMAGE),
        (encode(Image.new("RGB", (64, 64)), "PDF"), ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    ],
)
def test_refusals_carry_the_right_code(data, code):
    with pytest.raises(ServiceError) as info:
        preprocess(data, 40_000_000)
    assert info.value.code == code and info.value.message


def test_error_message_names_what_was_detected():
    with pytest.raises(ServiceError) as info:
        preprocess(b"<html><body>hi</body></html>", 40_000_000)
    assert "detected: text/html" in info.value.message
    assert "Accepted: JPEG, PNG, GIF, WebP, BMP, TIFF" in info.value.message


def test_exif_rotated_photo_reports_its_upright_size():
    # Stored 60 wide and 40 high, with an Orientation tag (6) that turns it upright: 40 x 60.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.new("RGB", (60, 40), "red"), "JPEG", exif=exif.tobytes())
    result = preprocess(data, 40_000_000)
    assert (result.width, result.height) == (40, 60)


def test_svg_is_refused_with_a_hint_to_convert_it():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'
    with pytest.raises(ServiceError) as caught:
        preprocess(svg, 40_000_000)
    assert caught.value.code == ErrorCode.UNSUPPORTED_MEDIA_TYPE
    assert caught.value.message.startswith("SVG drawings are not supported. Export the drawing as PNG")
    assert caught.value.details["detected"] == "image/svg+xml"


def test_a_tiff_tag_of_the_wrong_type_is_a_clean_415():
    """StripOffsets stored as a RATIONAL: Pillow raised TypeError (a 500); found by the damaged-image property."""
    out = io.BytesIO()
    Image.new("RGB", (50, 40), "red").save(out, "TIFF")
    data = bytearray(out.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, ifd)[0]):
        offset = ifd + 2 + 12 * entry
        if struct.unpack_from("<H", data, offset)[0] == 273:  # StripOffsets
            struct.pack_into("<HII", data, offset + 2, 5, 1, 8)  # type RATIONAL, one value, at byte 8
    with pytest.raises(ServiceError) as refused:
        preprocess(bytes(data), 40_000_000)
    assert refused.value.code == ErrorCode.UNSUPPORTED_MEDIA_TYPE

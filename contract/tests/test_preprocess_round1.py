"""Round 2's preprocessing (resample only the crop's region, no no-op copies) against round 1's
(resize the whole image, then crop), frozen in testsupport/round1_preprocess.py.

Pillow takes a resize box as 32-bit floats (precompute_coeffs(float in0, float in1)), so the
region's sampling positions differ from the whole resize's in the 7th digit and a rounding
between the two passes can turn: one level. Where a turned first pass shifts a whole column
and the second pass turns too, two levels, never more, and rarely: about 3 values in 10
million on the ImageNet sample, none on the golden photos. Only the whole-axis first pass
would be exact, and it would give back the time saved.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from PIL import Image

from imgclf_contract.preprocess import preprocess
from ml_worker.settings import WorkerSettings
from testsupport import badinput
from testsupport.round1_preprocess import round1_tensor

MAX_PIXELS = 40_000_000
SIZES = (224, 260)  # Lite0 and Lite2: the shorter side goes to 256 and to 297
SAMPLE_DIR = WorkerSettings.from_env().imagenet_sample_dir  # IMAGENET_SAMPLE_DIR, default beside the checkout
# Sizes whose resized sides leave an odd margin around the crop (441 - 224, 385 - 224; 297 - 260):
# the centre crop's offsets round down, so a mirrored orientation must take the other side's.
PORTRAIT = (301, 518)
LANDSCAPE = (601, 400)
SAMPLE_EVERY = 5  # 100 of the 500 photos: both orientations and many sizes, in a few seconds


def difference(data: bytes, size: int) -> np.ndarray:
    """|round 2 - round 1| per value, after checking the shape and that round 2 accepted the image."""
    new = preprocess(data, MAX_PIXELS, size=size).tensor
    old = round1_tensor(data, size)
    assert new.shape == old.shape == (size, size, 3)
    return np.abs(new.astype(np.int16) - old.astype(np.int16))


def photo(name: str, size: tuple[int, int] | None = None) -> Image.Image:
    image = badinput.golden(name)
    return image.resize(size, Image.Resampling.BICUBIC) if size else image


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[badinput.EXIF_ORIENTATION] = orientation
    return badinput.encode(image, "JPEG", quality=92, exif=exif.tobytes())


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Every pixel independent: the hardest case for rounding between the two passes."""
    bands = len(Image.new(mode, (1, 1)).getbands())
    array = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], bands), np.uint8)
    return Image.fromarray(array.squeeze(axis=2) if bands == 1 else array, mode)


def palette_with_transparency(image: Image.Image) -> Image.Image:
    paletted = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    paletted.info["transparency"] = 0
    return paletted


def la(image: Image.Image) -> Image.Image:
    grey = image.convert("L")
    grey.putalpha(Image.linear_gradient("L").resize(grey.size))
    return grey


# How a camera stores an upright photo for each EXIF orientation (the tag's own transpose undoes it).
STORED_TURNED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
GENERATED: dict[str, Callable[[], bytes]] = {
    "png-rgb-noise-landscape": lambda: badinput.encode(noise((500, 375)), "PNG"),
    "png-rgb-noise-portrait": lambda: badinput.encode(noise((333, 500)), "PNG"),
    "webp": lambda: badinput.encode(photo("chelsea.png"), "WEBP", quality=85),
    "gif-palette": lambda: badinput.encode(photo("coffee.png").convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
    "gif-transparent": lambda: badinput.encode(palette_with_transparency(photo("rocket.jpg")), "GIF"),
    "png-palette-transparent": lambda: badinput.encode(palette_with_transparency(photo("chelsea.png")), "PNG"),
    "png-rgba": lambda: badinput.transparent_png(photo("coffee.png")),
    "png-la": lambda: badinput.encode(la(photo("rocket.jpg")), "PNG"),
    "png-grey-16bit": lambda: badinput.grey16_png(photo("chelsea.png")),
    "jpeg-grey": lambda: badinput.encode(photo("rocket.jpg").convert("L"), "JPEG", quality=90),
    "jpeg-cmyk": lambda: badinput.cmyk_jpeg(photo("coffee.png")),
    "png-1bit": lambda: badinput.encode(photo("coffee.png").convert("1"), "PNG"),
    "tiny-16x16": lambda: badinput.encode(noise((16, 16)), "PNG"),
    "tiny-16x37": lambda: badinput.encode(photo("chelsea.png", (16, 37)), "PNG"),
    "tiny-41x16": lambda: badinput.encode(photo("rocket.jpg", (41, 16)), "PNG"),
    "wide-3000x16": lambda: badinput.encode(photo("coffee.png", (3000, 16)), "PNG"),
    "tall-20x2000": lambda: badinput.encode(photo("rocket.jpg", (20, 2000)), "JPEG", quality=90),
    "wide-4000x300-jpeg": lambda: badinput.encode(photo("chelsea.png", (4000, 300)), "JPEG", quality=90),
    "jpeg-12mp": lambda: badinput.encode(photo("coffee.png", (4032, 3024)), "JPEG", quality=92),
    "jpeg-12mp-exif-6": lambda: with_orientation(photo("chelsea.png", (4032, 3024)), 6),
    # big non-RGB images: reduce_for_resize() box-reduces RGBA in bands; a palette image cannot
    # be reduced in its mode, so resize's own reducing_gap pre-reduce runs on the RGB copy
    "png-rgba-3000x2000": lambda: badinput.transparent_png(photo("chelsea.png", (3000, 2000))),
    "gif-palette-2400x1800": lambda: badinput.encode(photo("rocket.jpg", (2400, 1800)).convert("P"), "GIF"),
    "png-grey-16bit-2000x1600": lambda: badinput.grey16_png(photo("coffee.png", (2000, 1600))),
    **{
        f"jpeg-exif-{o}-landscape": (lambda o=o: with_orientation(photo("coffee.png", LANDSCAPE), o))
        for o in range(1, 9)
    },
    **{
        f"jpeg-exif-{o}-portrait": (lambda o=o: with_orientation(photo("rocket.jpg", PORTRAIT), o)) for o in range(1, 9)
    },
}


def assert_within_tolerance(diff: np.ndarray) -> None:
    """Off by one level at most, but for rare double roundings (two levels, under 1e-4 of the values)."""
    assert diff.max() <= 2
    assert np.count_nonzero(diff == 2) <= 1e-4 * diff.size
    assert np.count_nonzero(diff) <= 5e-3 * diff.size


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["coffee.png", "chelsea.png", "rocket.jpg"])
def test_golden_photos_within_one_level(golden_dir, name: str, size: int):
    assert difference((golden_dir / name).read_bytes(), size).max() <= 1


@cache
def generated(case: str) -> bytes:
    return GENERATED[case]()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", sorted(GENERATED))
def test_generated_images_within_tolerance(case: str, size: int):
    assert_within_tolerance(difference(generated(case), size))


@pytest.mark.parametrize("orientation", range(2, 9))  # 1 (upright) is the reference itself
def test_every_orientation_crops_the_upright_centre(orientation: int):
    """Not only close to round 1: the crop is the upright photo's centre. A photo stored turned,
    with the EXIF tag that turns it back, gives the upright photo's tensor (JPEG noise aside)."""
    upright = photo("rocket.jpg", PORTRAIT)
    stored = upright.transpose(STORED_TURNED[orientation])
    expected = preprocess(with_orientation(upright, 1), MAX_PIXELS).tensor.astype(np.int16)
    turned = preprocess(with_orientation(stored, orientation), MAX_PIXELS)
    assert (turned.width, turned.height) == upright.size
    assert np.abs(turned.tensor.astype(np.int16) - expected).mean() < 2


def test_imagenet_sample_within_tolerance():
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"the ImageNet sample is absent at {SAMPLE_DIR} (set IMAGENET_SAMPLE_DIR)")
    photos = sorted(SAMPLE_DIR.glob("*.JPEG"))[::SAMPLE_EVERY]
    assert photos, f"no *.JPEG in {SAMPLE_DIR}"
    counts = np.zeros(256, np.int64)
    for path in photos:
        data = path.read_bytes()
        for size in SIZES:
            counts += np.bincount(difference(data, size).ravel(), minlength=256)
    total = counts.sum()
    assert counts[3:].sum() == 0, f"off by 3 or more: {counts[3:].nonzero()}"
    assert counts[2] <= 1e-6 * total, f"{counts[2]} of {total} values off by 2"
    assert counts[1] <= 1e-3 * total, f"{counts[1]} of {total} values off by 1"

"""The round-1 contract's pixels, frozen as the reference the faster one is held to.

Round 1 resized the WHOLE image (shorter side to resize_target(size), antialiased bicubic,
reducing_gap=3), turned it by the EXIF orientation, cropped the centre and copied the
crop into numpy. The steps before the resize (header checks, JPEG draft, decode,
reduce_for_resize, compositing) did not change and are imported; only the resize and
crop are frozen here. Test code only: nothing in the service calls it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from imgclf_contract.preprocess import (
    INPUT_SIZE,
    _orientation_transpose,  # unchanged since round 1
    reduce_for_resize,
    resize_target,
    to_rgb,
)


def round1_resize_and_crop(
    image: Image.Image,
    size: int,
    factor: int = 1,
    source_size: tuple[int, int] | None = None,
    transpose: Image.Transpose | None = None,
) -> np.ndarray:
    width, height = source_size or image.size
    scale = resize_target(size) / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    box = (0, 0, width / factor, height / factor)
    resized = image.resize(new_size, Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    if transpose is not None:
        resized = resized.transpose(transpose)
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8).copy(order="C")


def round1_tensor(data: bytes, size: int = INPUT_SIZE) -> np.ndarray:
    """What round 1's preprocess() returned as ``tensor`` for an image it accepted."""
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("RGB", (resize_target(size), resize_target(size)))
    image.seek(0)
    image.load()
    transpose = _orientation_transpose(image)
    source_size = image.size
    image, factor = reduce_for_resize(image, size)
    return round1_resize_and_crop(to_rgb(image), size, factor, source_size, transpose)

"""The preprocessing contract: upload bytes -> size x size x 3 uint8 RGB tensor.

One implementation for the API, the worker's tests, the build's self-check and
the benchmarks. Decisions are taken from the content, never the file name:
decode with Pillow (JPEG, PNG, GIF, WebP, BMP, TIFF only), refuse oversized
images from the header before decoding (pixels, and the bytes decoding would
allocate), apply EXIF orientation, take the first frame, composite transparency
on white, resize the shorter side to round(size / 0.875) with antialiased bicubic,
centre-crop ``size`` (the model's input size: 224 for EfficientNet-Lite0, 260 for Lite2).

Only the source region that becomes the crop is resampled (the same filter, scale and
sampling positions as resizing the whole image and cropping it), and the crop's pixels
leave Pillow once, as the bytes the job carries.

Memory: a small file may declare a big image, so everything past the decode works
on a box-reduced copy (at least 3x the target size) and never makes another
full-size copy: no float64, no full-size conversion or compositing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from imgclf_contract.errors import ErrorCode, ServiceError
from imgclf_contract.settings import SharedSettings

INPUT_SIZE = 224  # the default model's (EfficientNet-Lite0); every model states its own
CROP_FRACTION = 0.875  # the centre crop keeps this much of the resized shorter side
NORM_MEAN = 127.0
NORM_STD = 128.0
MIN_SIDE = 16
MAX_DECODE_BYTES = SharedSettings.max_decode_bytes  # default: a 40 MP RGB(A) bitmap fits
MAX_TILE_SIDE = 1024  # a TIFF tile may exceed the image, but not by more than this (libtiff allocates it whole)
_BICUBIC_SUPPORT = 2.0  # Pillow's bicubic kernel reaches this far, times the downscale factor
REDUCING_GAP = 3.0  # resize() box-reduces first while the bicubic pass keeps at least this much oversampling
_BAND_ROWS = 16  # reduce_for_resize() works on bands of this many output rows
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F")  # modes Image.reduce() handles (alpha-aware)
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
ACCEPTED_MIME_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
)
ACCEPTED_LABEL = "JPEG, PNG, GIF, WebP, BMP, TIFF"


def resize_target(size: int) -> int:
    """Shorter side before the centre crop: 256 for 224, 297 for 260."""
    return round(size / CROP_FRACTION)


def describe(size: int) -> str:
    """The preprocessing of a model with this input size, in words (model cards, /api/v1/models)."""
    return (
        f"decode (first frame, EXIF orientation applied), RGB with transparency on white, "
        f"resize shorter side to {resize_target(size)} (bicubic, antialiased), centre-crop "
        f"{size}x{size}, uint8; the model normalises (x - {NORM_MEAN:g}) / {NORM_STD:g}"
    )


ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's fixed decompression-bomb guard is replaced by the configurable MAX_PIXELS check,
# made from the header in open_checked() before anything is decoded.
Image.MAX_IMAGE_PIXELS = None


EXIF_ORIENTATION = 0x0112
_UNDO_ORIENTATION = {  # as ImageOps.exif_transpose
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# Each transpose as steps on the stored pixels: (swap the axes, then mirror x, mirror y).
_TRANSPOSE_STEPS: dict[Image.Transpose | None, tuple[bool, bool, bool]] = {
    None: (False, False, False),
    Image.Transpose.FLIP_LEFT_RIGHT: (False, True, False),
    Image.Transpose.FLIP_TOP_BOTTOM: (False, False, True),
    Image.Transpose.ROTATE_180: (False, True, True),
    Image.Transpose.TRANSPOSE: (True, False, False),
    Image.Transpose.ROTATE_90: (True, False, True),
    Image.Transpose.ROTATE_270: (True, True, False),
    Image.Transpose.TRANSVERSE: (True, True, True),
}


@dataclass(frozen=True)
class ImageHeader:
    """What an upload's header alone tells: its format and its size as displayed."""

    format: str
    width: int
    height: int


@dataclass(frozen=True)
class Preprocessed(ImageHeader):
    pixels: bytes  # size x size RGB, row by row: the job's payload as it is
    size: int

    @property
    def tensor(self) -> np.ndarray:
        """(size, size, 3) uint8, C-contiguous: a read-only view of ``pixels``, no copy."""
        return np.frombuffer(self.pixels, np.uint8).reshape(self.size, self.size, 3)


def _sniff(data: bytes) -> str:
    """A short description of what unreadable bytes look like, for the error message."""
    head = data[:512].lstrip().lower()
    if not data:
        return "empty file"
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        return "image/svg+xml"
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    try:
        data[:512].decode("utf-8")
        return "text/plain"
    except UnicodeDecodeError:
        return "application/octet-stream"


SVG_MESSAGE = (
    "SVG drawings are not supported. Export the drawing as PNG (most drawing programs can, or take "
    f"a screenshot of it) and upload that. Accepted: {ACCEPTED_LABEL}."
)


def unsupported(detected: str, reason: str | None = None) -> ServiceError:
    details = {"detected": detected, "accepted": list(ACCEPTED_FORMATS)}
    if reason:
        details["reason"] = reason
    message = (
        SVG_MESSAGE
        if detected == "image/svg+xml"
        else f"The file is not an image we can read (detected: {detected}). Accepted: {ACCEPTED_LABEL}."
    )
    return ServiceError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, message, details)


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as the photo is shown: EXIF orientations 5-8 turn it a quarter turn."""
    width, height = image.size
    return (height, width) if image.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8) else (width, height)


def open_checked(data: bytes, max_pixels: int, min_side: int = MIN_SIDE) -> Image.Image:
    """Identify the image from its header and enforce size limits before any decoding."""
    if not data:
        raise unsupported("empty file")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise unsupported(_sniff(data)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise unsupported(_sniff(data), str(exc)) from None
    width, height = image.size
    details = {"width": width, "height": height, "max_pixels": max_pixels, "min_side": min_side}
    if width * height > max_pixels:
        raise ServiceError(
            ErrorCode.UNPROCESSABLE_IMAGE,
            f"The image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}.",
            details,
        )
    if min(width, height) < min_side:
        raise ServiceError(
            ErrorCode.UNPROCESSABLE_IMAGE,
            f"The image is {width}x{height}; both sides must be at least {min_side} pixels.",
            details,
        )
    return image


def _pixel_bytes(mode: str) -> int:
    """Bytes per pixel as Pillow stores a decoded image (RGB is padded to 4)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _tile_bytes(image: Image.Image) -> int:
    """A tiled TIFF's tile buffer, which libtiff allocates whole however small the image."""
    tag = getattr(image, "tag_v2", {})
    tile_width, tile_height = tag.get(322, 0), tag.get(323, 0)
    if not (tile_width or tile_height):
        return 0
    width, height = image.size
    if tile_width > max(width, MAX_TILE_SIDE) or tile_height > max(height, MAX_TILE_SIDE):
        raise ServiceError(
            ErrorCode.UNPROCESSABLE_IMAGE,
            f"The TIFF declares {tile_width}x{tile_height} tiles for a {width}x{height} image.",
            {"width": width, "height": height, "tile_width": tile_width, "tile_height": tile_height},
        )
    return tile_width * tile_height * _pixel_bytes(image.mode)


def _jpeg_coefficient_bytes(image: Image.Image, width: int, height: int) -> int:
    """A progressive JPEG keeps every DCT coefficient (2 bytes each) at full size, whatever the draft scale."""
    if not image.info.get("progressive"):
        return 0
    layers = getattr(image, "layer", [])
    h_max = max((h for _id, h, _v, _q in layers), default=1)
    v_max = max((v for _id, _h, v, _q in layers), default=1)
    return sum(2 * width * height * h * v // (h_max * v_max) for _id, h, v, _q in layers)


def decode_bytes(image: Image.Image, width: int, height: int) -> int:
    """What decoding will allocate, from the header: the bitmap (after any JPEG draft scaling)
    plus a TIFF tile buffer or a progressive JPEG's coefficients. ``width``/``height``: as declared."""
    draft_width, draft_height = image.size
    bitmap = draft_width * draft_height * _pixel_bytes(image.mode)
    if image.format == "JPEG":
        return bitmap + _jpeg_coefficient_bytes(image, width, height)
    return bitmap + _tile_bytes(image)


def check_decode_budget(image: Image.Image, width: int, height: int, max_decode_bytes: int) -> None:
    needed = decode_bytes(image, width, height)
    if needed > max_decode_bytes:
        raise ServiceError(
            ErrorCode.UNPROCESSABLE_IMAGE,
            f"Decoding this {width}x{height} {image.mode} image would take {needed / 1e6:,.0f} MB; "
            f"the limit is {max_decode_bytes / 1e6:,.0f} MB.",
            {"width": width, "height": height, "decode_bytes": needed, "max_decode_bytes": max_decode_bytes},
        )


def _is_wide_grey(image: Image.Image) -> bool:
    return image.mode.startswith("I;16") or image.mode == "I"


def _grey_to_8bit(image: Image.Image, peak: int) -> Image.Image:
    """16/32-bit greyscale to 8 bits, scaled by ``peak`` rather than clipped to white."""
    wide = np.array(image, dtype=np.int32)  # a writable copy (of a band); 65535 * 255 fits
    np.clip(wide, 0, peak, out=wide)
    wide *= 255
    wide //= peak
    return Image.fromarray(wide.astype(np.uint8), "L")


def _grey_peak(image: Image.Image) -> int:
    return 65535 if image.mode.startswith("I;16") or image.getextrema()[1] > 255 else 255


def reduce_for_resize(image: Image.Image, size: int = INPUT_SIZE) -> tuple[Image.Image, int]:
    """Box-reduce a big image in its own mode (alpha-weighted for RGBA/LA) by the integer
    factor resize(reducing_gap=3) would use, before any full-size conversion; returns the copy
    and the factor. 16/32-bit greyscale and 1-bit become 8-bit greyscale on the way."""
    convert = None
    if _is_wide_grey(image):
        convert = partial(_grey_to_8bit, peak=_grey_peak(image))
    elif image.mode == "1":
        convert = partial(Image.Image.convert, mode="L")
    factor = max(1, min(image.size) // (3 * resize_target(size)))
    if convert is None and (factor == 1 or image.mode not in _REDUCIBLE):
        return image, 1
    # Band by band (rows a multiple of the factor, so the boxes are the same): reduce() of a
    # whole RGBA image, or a wide numpy copy of a 16-bit one, is several times the bitmap.
    width, height = image.size
    reduced = Image.new("L" if convert else image.mode, (-(-width // factor), -(-height // factor)))
    rows = factor * _BAND_ROWS
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(top + rows, height)))
        band = convert(band) if convert else band
        reduced.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    return reduced, factor


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparency (alpha or palette transparency) composited on white."""
    if image.mode == "RGB":
        return image  # convert() would copy it
    if _is_wide_grey(image):
        image = _grey_to_8bit(image, _grey_peak(image))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, P, CMYK (Pillow undoes Adobe's inversion), YCbCr, ...


def _stored_region(
    region: tuple[int, int, int, int], shown_size: tuple[int, int], transpose: Image.Transpose | None
) -> tuple[int, int, int, int]:
    """A (left, top, right, bottom) region of the transposed image, in the image before ``transpose``."""
    left, top, right, bottom = region
    width, height = shown_size
    swap, mirror_x, mirror_y = _TRANSPOSE_STEPS[transpose]
    if mirror_x:
        left, right = width - right, width - left
    if mirror_y:
        top, bottom = height - bottom, height - top
    return (top, left, bottom, right) if swap else (left, top, right, bottom)


def _reduce_as_resize_would(
    image: Image.Image, box_size: tuple[float, float], new_size: tuple[int, int]
) -> tuple[Image.Image, tuple[float, float]]:
    """The integer box-reduce resize(reducing_gap=REDUCING_GAP) makes before a big bicubic pass,
    over the whole image: a box over part of it would start its blocks elsewhere (other values)."""
    factors = [int(box / new / REDUCING_GAP) or 1 for box, new in zip(box_size, new_size, strict=True)]
    if factors == [1, 1]:
        return image, box_size
    return image.reduce((factors[0], factors[1])), (box_size[0] / factors[0], box_size[1] / factors[1])


def _horizontal_first(image_size: tuple[int, int], new_size: tuple[int, int]) -> bool:
    """The order of Pillow's (13.x) two resampling passes when it resizes a whole image."""
    (width, height), (new_width, new_height) = image_size, new_size
    return not (height - new_height > 0 and height - new_height > 2 * (width - new_width))


def _with_extent(box: tuple[float, float, float, float], axis: int, low: float, high: float) -> tuple[float, ...]:
    """``box`` (left, top, right, bottom) with its extent along ``axis`` (0: x, 1: y) replaced."""
    edges = list(box)
    edges[axis], edges[axis + 2] = low, high
    return tuple(edges)


def _resample_region(
    image: Image.Image, box: tuple[float, float, float, float], size: int, horizontal_first: bool
) -> Image.Image:
    """``box`` of ``image`` resampled to size x size, one axis after the other in the given order.

    Pillow rounds to 8 bits between its two passes and orders them by the sizes involved,
    so one resize(box=...) may run them the other way round from the whole resize (up to 18
    levels apart on ImageNet photos). Where its order is the given one, one call does it;
    elsewhere the first pass runs alone over a strip of the lines the second one reads
    (bicubic support and a line of rounding margin), then the second."""
    if _horizontal_first(image.size, (size, size)) == horizontal_first:  # Pillow's own order is the same
        return image.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=None)
    first, second = (0, 1) if horizontal_first else (1, 0)
    low, high = box[second], box[second + 2]
    reach = _BICUBIC_SUPPORT * max(1.0, (high - low) / size) + 1
    start, stop = max(0, math.floor(low - reach)), min(image.size[second], math.ceil(high + reach))
    strip = image.crop(_with_extent((0, 0, *image.size), second, start, stop))
    once = strip.resize(
        (size, strip.height) if first == 0 else (strip.width, size),
        Image.Resampling.BICUBIC,
        box=_with_extent((0, 0, *strip.size), first, box[first], box[first + 2]),
        reducing_gap=None,
    )
    return once.resize(
        (size, size),
        Image.Resampling.BICUBIC,
        box=_with_extent((0, 0, size, size), second, low - start, high - start),
        reducing_gap=None,
    )


def resize_and_crop(
    image: Image.Image,
    size: int = INPUT_SIZE,
    factor: int = 1,
    source_size: tuple[int, int] | None = None,
    transpose: Image.Transpose | None = None,
) -> Image.Image:
    """Shorter side to resize_target(size) (bicubic, antialiased), then the central size x size.

    Only the region that becomes the crop is resampled, at the whole resize's scale, sampling
    positions and pass order. ``factor``/``source_size``: ``image`` is reduce_for_resize()'s copy
    of an image that size, resampled over exactly the source's area. ``transpose`` (EXIF
    orientation) is applied to the crop; the region is the one that lands in the centre.
    """
    width, height = source_size or image.size
    scale = resize_target(size) / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    shown_size = new_size[::-1] if _TRANSPOSE_STEPS[transpose][0] else new_size
    left, top = (shown_size[0] - size) // 2, (shown_size[1] - size) // 2
    region = _stored_region((left, top, left + size, top + size), shown_size, transpose)
    image, (box_width, box_height) = _reduce_as_resize_would(image, (width / factor, height / factor), new_size)
    x_scale, y_scale = box_width / new_size[0], box_height / new_size[1]
    box = (region[0] * x_scale, region[1] * y_scale, region[2] * x_scale, region[3] * y_scale)
    cropped = _resample_region(image, box, size, _horizontal_first(image.size, new_size))
    return cropped if transpose is None else cropped.transpose(transpose)


def _orientation_transpose(image: Image.Image) -> Image.Transpose | None:
    """The transpose that undoes the EXIF orientation (read before reduce(), which drops TIFF tags)."""
    return _UNDO_ORIENTATION.get(image.getexif().get(EXIF_ORIENTATION, 1))


# TypeError: Pillow's TIFF decoder trips over a damaged tag (a rational where an integer belongs).
_CORRUPT = (OSError, SyntaxError, ValueError, EOFError, TypeError)


def _corrupt(fmt: str, exc: Exception) -> ServiceError:
    return unsupported(f"image/{fmt.lower()} (corrupt)", str(exc))


def read_header(data: bytes, max_pixels: int, min_side: int = MIN_SIDE) -> tuple[Image.Image, ImageHeader]:
    """The opened image and what its header alone tells (format, size as displayed), no pixels:
    enough to answer a cache hit without decoding. ServiceError (415/422) as preprocess()."""
    image = open_checked(data, max_pixels, min_side)
    fmt = image.format or "unknown"
    try:
        width, height = displayed_size(image)
    except _CORRUPT as exc:  # a damaged EXIF block
        raise _corrupt(fmt, exc) from None
    return image, ImageHeader(fmt, width, height)


def preprocess(
    data: bytes,
    max_pixels: int,
    min_side: int = MIN_SIDE,
    max_decode_bytes: int = MAX_DECODE_BYTES,
    size: int = INPUT_SIZE,
) -> Preprocessed:
    """Bytes of an upload -> the input tensor of a model taking size x size, or ServiceError (415/422)."""
    image, header = read_header(data, max_pixels, min_side)
    try:
        if header.format == "JPEG":
            # DCT-domain downscale, never below the resize target: decodes big photos several times faster.
            image.draft("RGB", (resize_target(size), resize_target(size)))
        check_decode_budget(image, header.width, header.height, max_decode_bytes)
        image.seek(0)
        image.load()
        transpose = _orientation_transpose(image)
        source_size = image.size
        image, factor = reduce_for_resize(image, size)
        pixels = resize_and_crop(to_rgb(image), size, factor, source_size, transpose).tobytes()
    except _CORRUPT as exc:
        raise _corrupt(header.format, exc) from None
    return Preprocessed(header.format, header.width, header.height, pixels=pixels, size=size)

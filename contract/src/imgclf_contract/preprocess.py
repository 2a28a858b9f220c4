"""The preprocessing contract: upload bytes -> size x size x 3 uint8 RGB tensor.

One implementation for the API, the worker's tests, the build's self-check and
the benchmarks. Decisions are taken from the content, never the file name:
decode with Pillow (JPEG, PNG, GIF, WebP, BMP, TIFF only), refuse oversized
images from the header before decoding, apply EXIF orientation, take the first
frame, composite transparency on white, resize the shorter side to
round(size / 0.875) with antialiased bicubic, centre-crop ``size`` (the model's
input size: 224 for EfficientNet-Lite0, 260 for Lite2).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from imgclf_contract.errors import ErrorCode, ServiceError

INPUT_SIZE = 224  # the default model's (EfficientNet-Lite0); every model states its own
CROP_FRACTION = 0.875  # the centre crop keeps this much of the resized shorter side
NORM_MEAN = 127.0
NORM_STD = 128.0
MIN_SIDE = 16
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


@dataclass(frozen=True)
class Preprocessed:
    tensor: np.ndarray  # (size, size, 3) uint8, C-contiguous
    format: str
    width: int
    height: int


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


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparency (alpha or palette transparency) composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clipping everything to white.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, P, CMYK (Pillow undoes Adobe's inversion), YCbCr, ...


def resize_and_crop(image: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """Shorter side to resize_target(size) (bicubic, antialiased), then the central size x size."""
    width, height = image.size
    scale = resize_target(size) / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    # reducing_gap: big images are first box-reduced by an integer factor, keeping at least
    # 3x the target size for the bicubic pass (Pillow: indistinguishable, several times faster).
    resized = image.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    left = (new_size[0] - size) // 2
    top = (new_size[1] - size) // 2
    cropped = resized.crop((left, top, left + size, top + size))
    return np.asarray(cropped, dtype=np.uint8).copy(order="C")


def preprocess(data: bytes, max_pixels: int, min_side: int = MIN_SIDE, size: int = INPUT_SIZE) -> Preprocessed:
    """Bytes of an upload -> the input tensor of a model taking size x size, or ServiceError (415/422)."""
    image = open_checked(data, max_pixels, min_side)
    fmt = image.format or "unknown"
    try:
        width, height = displayed_size(image)
        if fmt == "JPEG":
            # DCT-domain downscale, never below the resize target: decodes big photos several times faster.
            image.draft("RGB", (resize_target(size), resize_target(size)))
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
        tensor = resize_and_crop(to_rgb(image), size)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise unsupported(f"image/{fmt.lower()} (corrupt)", str(exc)) from None
    return Preprocessed(tensor, fmt, width, height)

"""The bad-input corpus: every odd upload the API promises to handle, with the status it must get.

Generated deterministically from the golden photos and synthetic images, so the
corpus is reviewable code rather than binary blobs, and each case carries its
expected answer. Builders are lazy: collecting the tests costs nothing, and the
big ones (a 400-megapixel bomb) are built only when sent. The image variants
(EXIF-rotated, CMYK, 16-bit, transparent) are shared with the golden-variant tests.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ml_worker.golden import DIR as GOLDEN_DIR

if TYPE_CHECKING:  # the image builders also serve the worker's tests, which have no HTTP client installed
    import requests
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

ESPRESSO = frozenset({"espresso"})
ROCKET = frozenset({"missile", "projectile"})
# Pillow's exif_transpose applies these to undo an EXIF orientation; we store the inverse.
_UNDO = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}
_INVERSE = {
    Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
    Image.Transpose.ROTATE_180: Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
}
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Upload:
    """One request body: multipart files and fields, or a JSON body."""

    files: list[tuple[str, tuple[str, bytes, str]]] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)
    json: dict | None = None

    def post(self, url: str, timeout: float = 30.0, **kwargs) -> requests.Response:
        """Over HTTP (requests), e.g. through nginx."""
        import requests

        if self.json is not None:
            return requests.post(url, json=self.json, timeout=timeout, **kwargs)
        return requests.post(url, files=self.files, data=self.data, timeout=timeout, **kwargs)

    def send(self, client: FlaskClient, path: str = "/api/v1/predictions") -> TestResponse:
        """The same body through a Flask test client (the fast tier)."""
        from werkzeug.datastructures import MultiDict

        if self.json is not None:
            return client.post(path, json=self.json)
        parts = [(name, (io.BytesIO(data), filename, kind)) for name, (filename, data, kind) in self.files]
        return client.post(path, data=MultiDict([*parts, *self.data.items()]), content_type="multipart/form-data")


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    make: Callable[[], Upload]
    top1: frozenset[str] = frozenset()  # for 200: the accepted top-1 labels (empty: any)


# -- images ---------------------------------------------------------------------
@cache
def golden(name: str) -> Image.Image:
    """A golden photo decoded to RGB (cached; callers must not modify it)."""
    with Image.open(GOLDEN_DIR / name) as image:
        return image.convert("RGB")


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def golden_bytes(name: str) -> bytes:
    return (GOLDEN_DIR / name).read_bytes()


def exif_rotated(image: Image.Image, orientation: int = 6) -> bytes:
    """A JPEG whose pixels are rotated and whose EXIF Orientation tag rotates them back upright."""
    stored = image.transpose(_INVERSE[_UNDO[orientation]])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def cmyk_jpeg(image: Image.Image) -> bytes:
    return encode(image.convert("CMYK"), "JPEG", quality=95)


def grey_png(image: Image.Image) -> bytes:
    return encode(image.convert("L"), "PNG")


def grey16_png(image: Image.Image) -> bytes:
    """A 16-bit greyscale (I;16) PNG spanning the full 0-65535 range."""
    wide = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(wide), "PNG")  # uint16 -> mode I;16


def transparent_png(image: Image.Image) -> bytes:
    """RGBA with a fully transparent border (a quarter of each side) and a half-transparent band."""
    rgba = image.convert("RGBA")
    width, height = rgba.size
    alpha = Image.new("L", rgba.size, 0)
    alpha.paste(255, (width // 8, height // 8, width - width // 8, height - height // 8))
    alpha.paste(128, (width // 8, height // 8, width - width // 8, height // 4))
    rgba.putalpha(alpha)
    return encode(rgba, "PNG")


def animated_gif(first: Image.Image, second: Image.Image) -> bytes:
    return encode(first, "GIF", save_all=True, append_images=[second.resize(first.size)], duration=100, loop=0)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def streamed_png(width: int, height: int, bit_depth: int, colour_type: int, pixel_row: bytes) -> bytes:
    """A valid PNG of identical rows, compressed row by row so no full bitmap is ever in memory."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + pixel_row  # filter type 0
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def decompression_bomb() -> bytes:
    """20000x20000 (400 MP) 1-bit black PNG: tens of KB on the wire, gigabytes if decoded to RGB."""
    return streamed_png(20_000, 20_000, 1, 0, bytes(20_000 // 8))


def huge_solid_png() -> bytes:
    """8000x6000 = 48 MP of one colour: small on the wire, over the default MAX_PIXELS of 40 MP."""
    return streamed_png(8000, 6000, 8, 2, bytes((200, 120, 40)) * 8000)


def grey16_bomb_png() -> bytes:
    """6300x6300 16-bit greyscale of one value, 90 kB: in MAX_PIXELS, once 1.1 GB to preprocess."""
    return streamed_png(6300, 6300, 16, 0, b"\x12\x34" * 6300)


def rgba_bomb_png() -> bytes:
    """6300x6300 half-transparent RGBA of one colour, 170 kB: 159 MB decoded."""
    return streamed_png(6300, 6300, 8, 6, bytes((10, 20, 30, 128)) * 6300)


def tiled_tiff_bomb(tile: int = 32768) -> bytes:
    """A 100x100 greyscale TIFF declaring tile x tile tiles (about 1 kB): libtiff allocates a whole tile."""
    data = zlib.compress(bytes(min(tile, 1024) ** 2))  # a whole tile when it is sane
    tags = [
        (256, 4, 100),
        (257, 4, 100),
        (258, 3, 8),
        (259, 3, 8),
        (262, 3, 1),
        (277, 3, 1),
        (322, 4, tile),
        (323, 4, tile),
        (324, 4, 0),
        (325, 4, len(data)),
    ]
    data_offset = 8 + 2 + 12 * len(tags) + 4
    ifd = b"".join(
        struct.pack("<HHI", tag, kind, 1)
        + struct.pack("<HH" if kind == 3 else "<I", *((value, 0) if kind == 3 else (value,)))
        for tag, kind, value in ((t, k, data_offset if t == 324 else v) for t, k, v in tags)
    )
    return b"II*\x00" + struct.pack("<IH", 8, len(tags)) + ifd + bytes(4) + data


def bad_crc_png() -> bytes:
    """The coffee PNG with one bit of its IHDR checksum flipped."""
    data = bytearray(encode(golden("coffee.png"), "PNG"))
    data[8 + 4 + 4 + 13] ^= 0x01  # signature, length, type, 13 header bytes, then the CRC
    return bytes(data)


def padded_png(size: int) -> bytes:
    """A valid small PNG padded with a tEXt chunk to exactly ``size`` bytes."""
    base = encode(golden("coffee.png").resize((120, 80)), "PNG")
    iend = base.rindex(b"IEND") - 4
    padding = size - len(base) - 12 - len(b"pad\x00")  # 12: chunk length, type and CRC
    if padding < 0:
        raise ValueError(f"{size} bytes is smaller than the base PNG ({len(base)} bytes)")
    chunk = png_chunk(b"tEXt", b"pad\x00" + b"x" * padding)
    data = base[:iend] + chunk + base[iend:]
    assert len(data) == size
    return data


# -- requests -------------------------------------------------------------------
def upload(
    data: bytes, filename: str = "photo.png", content_type: str = "image/png", field_name: str = "image", **form: str
) -> Upload:
    return Upload(files=[(field_name, (filename, data, content_type))], data=form)


SCRIPT_HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SCRIPT_SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b"<script>alert(1)</script><rect width='64' height='64'/></svg>"
)


def corpus(max_upload_bytes: int) -> list[Case]:
    """Every case, for a stack with this MAX_UPLOAD_BYTES and the default MAX_PIXELS (40 MP)."""
    coffee = partial(golden, "coffee.png")
    coffee_png = partial(golden_bytes, "coffee.png")
    rocket = partial(golden, "rocket.jpg")
    return [
        # 400: the request itself is malformed
        Case("wrong-field-name", 400, lambda: upload(coffee_png(), field_name="file")),
        Case("two-files", 400, lambda: Upload(files=[("image", ("a.png", coffee_png(), "image/png"))] * 2)),
        Case("json-body", 400, lambda: Upload(json={"image": "aGVsbG8=", "top_k": 5})),
        Case("top-k-0", 400, lambda: upload(coffee_png(), top_k="0")),
        Case("top-k-11", 400, lambda: upload(coffee_png(), top_k="11")),
        Case("top-k-abc", 400, lambda: upload(coffee_png(), top_k="abc")),
        # 413: over the upload limit (a valid image, one byte too big)
        Case("over-limit", 413, lambda: upload(padded_png(max_upload_bytes + 1))),
        # 415: not an image we can decode
        Case("empty", 415, lambda: upload(b"", "empty.png")),
        Case("text-named-jpg", 415, lambda: upload(b"just some text\n" * 20, "photo.jpg", "image/jpeg")),
        Case("html-script", 415, lambda: upload(SCRIPT_HTML, "page.html", "text/html")),
        Case("svg-script", 415, lambda: upload(SCRIPT_SVG, "drawing.svg", "image/svg+xml")),
        Case("truncated-jpeg", 415, lambda: upload(golden_bytes("rocket.jpg")[:20_000], "rocket.jpg", "image/jpeg")),
        Case("png-bad-crc", 415, lambda: upload(bad_crc_png())),
        # 422: decodable but unusable
        Case("1x1", 422, lambda: upload(encode(Image.new("RGB", (1, 1), "red"), "PNG"))),
        Case("decompression-bomb", 422, lambda: upload(decompression_bomb(), "bomb.png")),
        Case("huge-solid-48mp", 422, lambda: upload(huge_solid_png(), "solid.png")),
        Case("tiff-32768-tiles", 422, lambda: upload(tiled_tiff_bomb(), "tiles.tiff", "image/tiff")),
        # 200: odd but valid
        Case("animated-gif", 200, lambda: upload(animated_gif(coffee(), rocket()), "a.gif", "image/gif"), ESPRESSO),
        Case("cmyk-jpeg", 200, lambda: upload(cmyk_jpeg(coffee()), "cmyk.jpg", "image/jpeg"), ESPRESSO),
        Case("grey-16bit-png", 200, lambda: upload(grey16_png(coffee()), "grey16.png")),
        Case("grey-16bit-40mp-90kb", 200, lambda: upload(grey16_bomb_png(), "grey16-bomb.png")),
        Case("rgba-40mp-170kb", 200, lambda: upload(rgba_bomb_png(), "rgba-bomb.png")),
        Case("exif-rotated", 200, lambda: upload(exif_rotated(rocket()), "rot.jpg", "image/jpeg"), ROCKET),
        Case("bmp", 200, lambda: upload(encode(coffee(), "BMP"), "c.bmp", "image/bmp"), ESPRESSO),
        Case("tiff", 200, lambda: upload(encode(coffee(), "TIFF"), "c.tiff", "image/tiff"), ESPRESSO),
        Case("webp", 200, lambda: upload(encode(coffee(), "WEBP", quality=95), "c.webp", "image/webp"), ESPRESSO),
        Case("unicode-name", 200, lambda: upload(coffee_png(), "☕ café «épreuve» 写真.png"), ESPRESSO),
        Case("10kb-name", 200, lambda: upload(coffee_png(), "n" * 10_240 + ".png"), ESPRESSO),
        Case("traversal-name", 200, lambda: upload(coffee_png(), "../../etc/passwd"), ESPRESSO),
    ]

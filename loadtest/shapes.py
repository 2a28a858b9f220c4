"""Labelled images for training tests and benchmarks, drawn with Pillow: one folder per label.

Each label is a kind of scene (a shape, a texture or a colour layout); size,
position, colours and noise vary from image to image with a seeded generator,
so a head has to learn the kind, not memorise pixels.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

Painter = Callable[[ImageDraw.ImageDraw, np.random.Generator, int], None]


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _box(rng: np.random.Generator, side: int) -> tuple[int, int, int, int]:
    size = int(rng.integers(side // 3, side * 3 // 4))
    x, y = (int(v) for v in rng.integers(0, side - size, 2))
    return x, y, x + size, y + size


def _circle(d, rng, side):
    d.ellipse(_box(rng, side), fill=_colour(rng))


def _square(d, rng, side):
    d.rectangle(_box(rng, side), fill=_colour(rng))


def _triangle(d, rng, side):
    x0, y0, x1, y1 = _box(rng, side)
    d.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=_colour(rng))


def _stripes(d, rng, side):
    step, colour = int(rng.integers(8, 24)), _colour(rng)
    for x in range(int(rng.integers(0, step)), side, step * 2):
        d.rectangle((x, 0, x + step - 1, side), fill=colour)


def _checks(d, rng, side):
    step, colour = int(rng.integers(10, 30)), _colour(rng)
    for y in range(0, side, step):
        for x in range((y // step % 2) * step, side, step * 2):
            d.rectangle((x, y, x + step - 1, y + step - 1), fill=colour)


def _rings(d, rng, side):
    cx, cy = (int(v) for v in rng.integers(side // 4, side * 3 // 4, 2))
    colour, step = _colour(rng), int(rng.integers(6, 14))
    for r in range(side, 0, -step * 2):
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=step)


def _cross(d, rng, side):
    x0, y0, x1, y1 = _box(rng, side)
    w, colour = max(4, (x1 - x0) // 5), _colour(rng)
    d.rectangle(((x0 + x1) // 2 - w, y0, (x0 + x1) // 2 + w, y1), fill=colour)
    d.rectangle((x0, (y0 + y1) // 2 - w, x1, (y0 + y1) // 2 + w), fill=colour)


def _dots(d, rng, side):
    colour = _colour(rng)
    for _ in range(int(rng.integers(15, 40))):
        x, y, r = int(rng.integers(0, side)), int(rng.integers(0, side)), int(rng.integers(3, 9))
        d.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _diagonal(d, rng, side):
    colour, width = _colour(rng), int(rng.integers(6, 16))
    for offset in range(-side, side, width * 3):
        d.line((offset, 0, offset + side, side), fill=colour, width=width)


def _ring(d, rng, side):
    d.ellipse(_box(rng, side), outline=_colour(rng), width=int(rng.integers(6, 14)))


def _frame(d, rng, side):
    d.rectangle(_box(rng, side), outline=_colour(rng), width=int(rng.integers(6, 14)))


def _halves(d, rng, side):
    cut = int(rng.integers(side // 3, side * 2 // 3))
    d.rectangle((0, cut, side, side), fill=_colour(rng))


PAINTERS: dict[str, Painter] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "stripes": _stripes,
    "checks": _checks,
    "rings": _rings,
    "cross": _cross,
    "dots": _dots,
    "diagonal": _diagonal,
    "ring": _ring,
    "frame": _frame,
    "halves": _halves,
}


def image(label: str, rng: np.random.Generator, side: int = 224, fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", (side, side), _colour(rng))
    PAINTERS[label](ImageDraw.Draw(img), rng, side)
    noise = rng.normal(0, 8, (side, side, 3))
    pixels = np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def write_folder(root: Path, labels: list[str], per_label: int, seed: int, names: dict[str, str] | None = None) -> Path:
    """root/<label or names[label]>/<i>.png for each label; returns root."""
    rng = np.random.default_rng(seed)
    for label in labels:
        folder = root / (names or {}).get(label, label)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            (folder / f"{i:03d}.png").write_bytes(image(label, rng))
    return root

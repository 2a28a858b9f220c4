"""The benchmark photo set: real photos of mixed sizes and formats, made deterministically.

Each photo is a golden photo upscaled to a target size, cropped with a seeded
jitter, slightly re-toned and re-encoded, so the set runs from small PNGs to
10+ MP JPEGs, every file has distinct bytes (no cache or dedup can help) and
every run of the benchmark sends exactly the same bytes. Files are cached
under ``loadtest/results/images/<set>/``.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance

from ml_worker.golden import DIR as GOLDEN

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "loadtest" / "results" / "images"
GENERATOR_VERSION = 1

# (width, height, format, quality): the size mix of one cycle of the set.
SIZES: tuple[tuple[int, int, str, int], ...] = (
    (320, 240, "PNG", 0),
    (640, 480, "JPEG", 85),
    (800, 600, "PNG", 0),
    (1280, 960, "JPEG", 90),
    (1920, 1080, "JPEG", 85),
    (2048, 1536, "WEBP", 80),
    (3000, 2000, "JPEG", 90),
    (4032, 3024, "JPEG", 92),  # 12.2 MP, a phone photo
)
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    width: int
    height: int
    format: str

    @property
    def mime(self) -> str:
        return f"image/{self.format.lower()}"


def _render(source: Image.Image, width: int, height: int, rng: random.Random) -> Image.Image:
    """Scale the source to cover width x height with some margin, crop with jitter, re-tone."""
    scale = max(width / source.width, height / source.height) * rng.uniform(1.02, 1.15)
    scaled = source.resize((round(source.width * scale), round(source.height * scale)), Image.Resampling.BICUBIC)
    left = rng.randint(0, scaled.width - width)
    top = rng.randint(0, scaled.height - height)
    image = scaled.crop((left, top, left + width, top + height))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.92, 1.08))
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.92, 1.08))


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    options = {"quality": quality} if quality else {"compress_level": 6}
    image.save(out, fmt, **options)
    return out.getvalue()


def make_photo(index: int) -> Photo:
    """Photo number `index` of the (endless, deterministic) sequence."""
    rng = random.Random(f"imgclf-bench-{GENERATOR_VERSION}-{index}")
    goldens = sorted(p for p in GOLDEN.iterdir() if p.suffix in (".png", ".jpg"))
    source_path = goldens[index % len(goldens)]
    width, height, fmt, quality = SIZES[index % len(SIZES)]
    with Image.open(source_path) as source:
        image = _render(source.convert("RGB"), width, height, rng)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    name = f"{index:03d}-{source_path.stem}-{width}x{height}{SUFFIX[fmt]}"
    return Photo(name, _encode(image, fmt, quality), width, height, fmt)


def photo_set(count: int) -> list[Photo]:
    """The first `count` photos, generated once and then read from the cache."""
    directory = CACHE / f"v{GENERATOR_VERSION}"
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    photos = []
    for index in range(count):
        entry = manifest.get(str(index))
        path = directory / entry["name"] if entry else None
        if entry and path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]:
            photos.append(Photo(entry["name"], path.read_bytes(), entry["width"], entry["height"], entry["format"]))
            continue
        photo = make_photo(index)
        (directory / photo.name).write_bytes(photo.data)
        manifest[str(index)] = {
            "name": photo.name,
            "sha256": hashlib.sha256(photo.data).hexdigest(),
            "width": photo.width,
            "height": photo.height,
            "format": photo.format,
        }
        photos.append(photo)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    if len({hashlib.sha256(p.data).digest() for p in photos}) != len(photos):
        raise RuntimeError("benchmark photos are not all distinct; bump GENERATOR_VERSION")
    return photos


def folder(count: int) -> Path:
    """A directory holding exactly the first `count` photos (for the bulk CLI)."""
    photos = photo_set(count)
    directory = CACHE / f"v{GENERATOR_VERSION}-first{count}"
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in photos}
    for stale in directory.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for photo in photos:
        target = directory / photo.name
        if not target.exists():
            target.write_bytes(photo.data)
    return directory


def multipart(photo: Photo, field: str = "image") -> tuple[bytes, str]:
    """A ready-to-send multipart body and its content type, built once so load generators only write bytes."""
    boundary = "bench-" + hashlib.sha256(photo.data).hexdigest()[:24]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{photo.name}"\r\n'
        f"Content-Type: {photo.mime}\r\n\r\n"
    ).encode()
    return head + photo.data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def summary(photos: list[Photo]) -> dict:
    megapixels = [p.width * p.height / 1e6 for p in photos]
    formats: dict[str, int] = {}
    for p in photos:
        formats[p.format] = formats.get(p.format, 0) + 1
    return {
        "count": len(photos),
        "total_bytes": sum(len(p.data) for p in photos),
        "max_bytes": max(len(p.data) for p in photos),
        "formats": formats,
        "megapixels": {"min": round(min(megapixels), 2), "max": round(max(megapixels), 2)},
    }


if __name__ == "__main__":
    import sys

    for p in photo_set(int(sys.argv[1]) if len(sys.argv) > 1 else 24):
        print(f"{p.name:40} {p.format:5} {len(p.data):>9} bytes")

"""Representative inputs for post-training quantisation: real photos that PyPI wheels ship.

Never the evaluation photos (IMAGENET_SAMPLE_DIR) and never the golden photos
(scikit-image's chelsea, coffee and rocket): the quantised model is judged on
both, so it must not be calibrated on them. Each photo yields its whole frame
and a fixed number of random crops (area, aspect ratio, mirror; ``numpy``
generator with a fixed seed, so every build sees the same inputs), each encoded
as PNG and put through the contract's preprocessing, exactly as an upload is.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf_contract.preprocess import preprocess

SEED = 20261127
CROPS_PER_PHOTO = 19  # plus the whole photo: 20 inputs from each
MIN_AREA, MAX_ASPECT = 0.15, 4 / 3
MAX_PIXELS = 10**8  # far above any of these photos: the limit never decides anything here


@dataclass(frozen=True)
class Photo:
    distribution: str  # the wheel that ships it (pinned in constraints.txt)
    file: str  # its path inside the installed distribution

    @property
    def path(self) -> Path:
        return Path(str(distribution(self.distribution).locate_file(self.file)))


_SKIMAGE = (
    "astronaut.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "retina.jpg",
    "camera.png",
    "coins.png",
    "moon.png",
    "grass.png",
    "gravel.png",
    "brick.png",
    "clock_motion.png",
)
PHOTOS: tuple[Photo, ...] = (
    *(Photo("scikit-image", f"skimage/data/{name}") for name in _SKIMAGE),
    Photo("scikit-learn", "sklearn/datasets/images/china.jpg"),
    Photo("scikit-learn", "sklearn/datasets/images/flower.jpg"),
    Photo("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
)


def random_crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A crop of MIN_AREA..1 of the frame with aspect ratio 1/MAX_ASPECT..MAX_ASPECT, mirrored half the time."""
    width, height = image.size
    area = rng.uniform(MIN_AREA, 1.0) * width * height
    aspect = float(np.exp(rng.uniform(-np.log(MAX_ASPECT), np.log(MAX_ASPECT))))
    w = int(min(width, max(16, round(np.sqrt(area * aspect)))))
    h = int(min(height, max(16, round(np.sqrt(area / aspect)))))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    crop = image.crop((left, top, left + w, top + h))
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def tensors(size: int, crops_per_photo: int = CROPS_PER_PHOTO, seed: int = SEED) -> np.ndarray:
    """(n, size, size, 3) uint8: every photo whole, then its crops, through the contract's preprocessing."""
    rng = np.random.default_rng(seed)
    out = []
    for photo in PHOTOS:
        data = photo.path.read_bytes()
        out.append(preprocess(data, MAX_PIXELS, size=size).tensor)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            for _ in range(crops_per_photo):
                out.append(preprocess(_png(random_crop(image, rng)), MAX_PIXELS, size=size).tensor)
    return np.stack(out)


def describe(crops_per_photo: int = CROPS_PER_PHOTO, seed: int = SEED) -> dict:
    """What the model card records about the calibration set."""
    return {
        "photos": [f"{p.distribution}: {p.file}" for p in PHOTOS],
        "inputs": len(PHOTOS) * (crops_per_photo + 1),
        "method": f"each photo whole plus {crops_per_photo} random crops ({MIN_AREA:g}-1 of the area, aspect "
        f"1/{MAX_ASPECT:.3g}-{MAX_ASPECT:.3g}, mirrored half the time; seed {seed}), PNG-encoded, then the "
        "contract's preprocessing",
    }

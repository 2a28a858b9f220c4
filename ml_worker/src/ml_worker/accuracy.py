"""Top-1 / top-5 of the built models on labelled ImageNet photos, in process.

``python -m ml_worker.accuracy [--model NAME]`` reads IMAGENET_SAMPLE_DIR
(default ``../shared/datasets/imagenet-sample-500`` beside the checkout: one
photo per even class index, named ``<wnid>_<label>.JPEG``), runs every photo
through the preprocessing contract at the model's input size and the LiteRT
model, and prints the figures. The build records them in each model card, so
``/api/v1/models`` shows the measured accuracy beside the published one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from imgclf_contract.preprocess import preprocess
from ml_worker import artifacts
from ml_worker.backends import load_backend, softmax
from ml_worker.settings import WorkerSettings

WNID_PREFIX = re.compile(r"^(n\d{8})_")
BATCH = 8


@dataclass(frozen=True)
class Accuracy:
    dataset: str
    images: int
    top1: float
    top5: float
    seconds: float


def labelled_photos(directory: Path) -> list[tuple[Path, str]]:
    """(photo, WordNet id) for every file whose name starts with a WordNet id, sorted by name."""
    photos = []
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        match = WNID_PREFIX.match(path.name)
        if match and path.is_file():
            photos.append((path, match[1]))
    return photos


def measure(model: artifacts.ModelArtifacts, photos: list[tuple[Path, str]], max_pixels: int) -> Accuracy:
    """Accuracy of one model on the photos (LiteRT, batches of 8, the serving path's arithmetic)."""
    started = time.monotonic()
    backend = load_backend("litert", model, num_threads=2, batch_num_threads=2)
    wnids = [label.wnid for label in model.labels()]
    top1 = top5 = 0
    for start in range(0, len(photos), BATCH):
        chunk = photos[start : start + BATCH]
        batch = np.stack([preprocess(p.read_bytes(), max_pixels, size=model.input_size).tensor for p, _ in chunk])
        best5 = np.argsort(-softmax(backend.run(batch).logits), axis=1)[:, :5]
        for (_, wnid), row in zip(chunk, best5, strict=True):
            answers = [wnids[i] for i in row]
            top1 += answers[0] == wnid
            top5 += wnid in answers
    n = len(photos)
    return Accuracy(
        dataset=photos[0][0].parent.name if photos else "",
        images=n,
        top1=round(top1 / n, 4) if n else 0.0,
        top5=round(top5 / n, 4) if n else 0.0,
        seconds=round(time.monotonic() - started, 1),
    )


def measure_if_present(model: artifacts.ModelArtifacts, settings: WorkerSettings) -> dict | None:
    """The model card's ``measured`` entry, or None where the sample set is absent."""
    photos = labelled_photos(settings.imagenet_sample_dir)
    return asdict(measure(model, photos, settings.max_pixels)) if photos else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model name (repeatable; default: every built model)")
    args = parser.parse_args(argv)
    settings = WorkerSettings.from_env()
    photos = labelled_photos(settings.imagenet_sample_dir)
    if not photos:
        print(f"no labelled photos in {settings.imagenet_sample_dir} (set IMAGENET_SAMPLE_DIR)", file=sys.stderr)
        return 2
    names = args.model or artifacts.built_names(settings.artifacts_dir)
    for name in names:  # the int8 variants too: they are built models like any other
        model = artifacts.load(settings.artifacts_dir, name)
        result = measure(model, photos, settings.max_pixels)
        print(json.dumps({"model": name, "precision": model.precision, **asdict(result)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

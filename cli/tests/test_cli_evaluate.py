"""`imgclf evaluate` on a small labelled folder and `imgclf predict`, against the API served on the fast tier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imgclf.cli import main


@pytest.fixture
def labelled(tmp_path, golden_dir) -> Path:
    """Folders named by label, by WordNet id (tabby) and in another case; one folder matches no label."""
    layout = {
        "espresso": ["coffee.png", "coffee.png"],
        "n02123045": ["chelsea.png"],  # tabby; the model's top-1 is "tiger cat", tabby is in its top-5
        "Missile": ["rocket.jpg"],
        "not_a_class": ["coffee.png"],
    }
    for folder, photos in layout.items():
        (tmp_path / folder / "sub").mkdir(parents=True)
        for i, photo in enumerate(photos):
            shutil.copy(golden_dir / photo, tmp_path / folder / ("sub" if i else "") / f"{i}-{photo}")
    return tmp_path


def test_evaluate_reports_accuracy_per_class_and_confusions(served_app, worker, labelled, capsys):
    assert main(["evaluate", str(labelled), "--url", served_app.url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["images"], report["errors"], report["top1"], report["top5"]) == (4, 0, 0.75, 1.0)
    assert report["classes"]["espresso"] == {"images": 2, "errors": 0, "top1": 1.0, "top5": 1.0}
    assert report["classes"]["n02123045"]["top1"] == 0.0 and report["classes"]["Missile"]["top1"] == 1.0
    assert report["confusions"] == [{"expected": "n02123045", "predicted": "tiger cat", "count": 1}]
    assert report["unknown_folders"] == ["not_a_class"]

    assert main(["evaluate", str(labelled), "--url", served_app.url]) == 0
    table = capsys.readouterr().out
    assert "75.0%" in table and "n02123045 -> tiger cat: 1" in table and "not_a_class" in table


def test_predict_prints_top5(served_app, worker, golden_dir, tmp_path, capsys):
    url = served_app.url
    assert main(["predict", str(golden_dir / "coffee.png"), str(golden_dir / "rocket.jpg"), "--url", url]) == 0
    text = capsys.readouterr().out
    coffee, rocket = text.split("\n\n")
    assert coffee.splitlines()[1].split()[:2] == ["1.", "espresso"] and len(coffee.splitlines()) == 6
    assert "missile" in rocket and "projectile" in rocket

    bad = tmp_path / "bad.jpg"
    bad.write_text("text")
    assert main(["predict", str(golden_dir / "chelsea.png"), str(bad), "--url", url, "--json"]) == 1
    cat, failed = json.loads(capsys.readouterr().out)
    assert cat["status"] == "ok"
    assert {p["label"] for p in cat["top5"][:3]} == {"tiger cat", "tabby", "Egyptian cat"}
    assert (failed["status"], failed["error_code"]) == ("error", "unsupported_media_type")


def test_evaluate_a_flat_wnid_named_folder_with_another_model(live_stack, golden_dir, tmp_path, capsys):
    """ImageNet sample sets name each file <wnid>_<label>; --model asks Lite2 and reads Lite2's labels."""
    for wnid, photo in (("n07920052", "coffee.png"), ("n02124075", "chelsea.png"), ("n03773504", "rocket.jpg")):
        shutil.copy(golden_dir / photo, tmp_path / f"{wnid}_{photo}")
    (tmp_path / "notes.txt").write_text("not an image, not counted")
    args = ["evaluate", str(tmp_path), "--url", live_stack.config.url, "--json", "--model", "efficientnet_lite2"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["images"], report["errors"], report["top5"]) == (3, 0, 1.0)
    assert report["classes"]["Egyptian cat"]["top1"] == 1.0  # Lite0 would say tiger cat
    assert report["confusions"] == [{"expected": "missile", "predicted": "drilling platform", "count": 1}]


def test_an_unknown_model_is_reported_not_crashed_on(live_stack, golden_dir, capsys):
    url = live_stack.config.url
    assert main(["predict", str(golden_dir / "coffee.png"), "--url", url, "--model", "resnet50", "--json"]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["status"], row["error_code"]) == ("error", "not_found")


def test_predict_with_the_int8_variant_names_what_the_float_model_names(served_app, worker, golden_dir, capsys):
    """`--model efficientnet_lite0_int8` reaches the quantised variant; its answers are the float model's."""
    photos = [str(golden_dir / name) for name in ("coffee.png", "chelsea.png", "rocket.jpg")]
    answers = {}
    for model in ("efficientnet_lite0", "efficientnet_lite0_int8"):
        assert main(["predict", *photos, "--url", served_app.url, "--model", model, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert {row["model"] for row in rows} == {model}
        answers[model] = [row["top5"][0]["label"] for row in rows]
    assert answers["efficientnet_lite0_int8"] == answers["efficientnet_lite0"] == ["espresso", "tiger cat", "missile"]

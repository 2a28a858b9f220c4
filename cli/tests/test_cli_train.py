"""`imgclf train` from a labelled folder (upload with resume, training, report), then `imgclf evaluate --model`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgclf.cli import main
from loadtest import shapes

pytestmark = pytest.mark.integration
NAME = "cli_shapes"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 labels x 20 images; one label nested a level deeper; a text file named .png is not sent."""
    root = shapes.write_folder(tmp_path_factory.mktemp("train"), ["triangle", "dots", "rings"], 20, seed=21)
    nested = root / "rings" / "more"
    nested.mkdir()
    for png in sorted((root / "rings").glob("01*.png")):
        png.rename(nested / png.name)
    (root / "dots" / "notes.png").write_text("not an image")
    return root


def test_train_uploads_trains_and_resumes(trainer_stack, folder, capsys):
    url = trainer_stack.config.url
    assert main(["train", str(folder), "--name", NAME, "--url", url]) == 0
    captured = capsys.readouterr()
    assert "uploaded 60, already there 0, refused 0" in captured.err
    assert f"model {NAME} version 1: hold-out top-1" in captured.out
    top1 = float(captured.out.split("hold-out top-1 ")[1].split("%")[0])
    assert top1 >= 90.0, captured.out
    for label in ("triangle", "dots", "rings"):
        assert label in captured.out

    assert main(["train", str(folder), "--name", NAME, "--url", url]) == 0  # resumes: nothing sent again
    captured = capsys.readouterr()
    assert "uploaded 0, already there 60" in captured.err and f"model {NAME} version 2" in captured.out

    assert main(["evaluate", str(folder), "--model", NAME, "--url", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 60 and report["top1"] >= 0.9 and not report["unknown_folders"]
    assert report["errors"] == 1  # evaluate goes by name: the server refuses the text file (415)


def test_train_refuses_a_single_label_clearly(trainer_stack, tmp_path, capsys):
    shapes.write_folder(tmp_path, ["square"], 6, seed=4)
    assert main(["train", str(tmp_path), "--name", "cli_single", "--url", trainer_stack.config.url]) == 1
    assert "at least 2 labels" in capsys.readouterr().err

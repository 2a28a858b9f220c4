"""`imgclf classify`: rows and errors, resume, Ctrl-C, organize (also of a finished run), retrying a 503
(against the API served over HTTP on the fast tier: the Flask app and the real worker code in this process,
real Redis), and giving up run-wide when a real stack's nginx goes away."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image
from prometheus_client import REGISTRY

from imgclf.cli import main
from imgclf.organize import UNCERTAIN
from imgclf.results import CSV_FIELDS, read_rows
from testsupport import slow_worker
from testsupport.inprocess import ServedApp
from testsupport.processes import wait_until

IMGCLF = Path(sys.executable).parent / "imgclf"
# Bad files and the error code the run must record for each (they never stop the run).
BAD = {
    "bad/text.jpg": "unsupported_media_type",
    "bad/empty.png": "unsupported_media_type",
    "bad/tiny.png": "unprocessable_image",
    "bad/truncated.jpg": "unsupported_media_type",
}
SLOW_BATCH_S = 0.15  # per batch, so a run lasts long enough to interrupt
FORMATS = [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("bmp", "BMP"), ("gif", "GIF"), ("tiff", "TIFF")]


def _variants(image: Image.Image) -> list[Image.Image]:
    w, h = image.size
    return [
        image,
        image.resize((w // 2, h // 2)),
        image.crop((w // 8, h // 8, w - w // 8, h - h // 8)),
        image.rotate(90, expand=True),
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        image.convert("L").convert("RGB").resize((w // 3, h // 3)),
    ]


def _build_collection(root: Path, golden_dir: Path, variants: int = 6) -> list[Path]:
    """Golden photos in several shapes and formats across nested folders, plus bad files; returns the images."""
    images: list[Path] = []
    for photo in sorted(golden_dir.glob("*.[pj][np]g")):
        base = Image.open(photo).convert("RGB")
        for i, variant in enumerate(_variants(base)[:variants]):
            ext, fmt = FORMATS[i % len(FORMATS)]
            path = root / photo.stem / ("nested" if i % 2 else "") / f"{photo.stem}-{i}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            variant.save(path, fmt)
            images.append(path)
    (root / "bad").mkdir()
    (root / "bad/text.jpg").write_text("not an image at all\n")
    (root / "bad/empty.png").write_bytes(b"")
    Image.new("RGB", (8, 8), "red").save(root / "bad/tiny.png")
    jpeg = io.BytesIO()
    Image.open(golden_dir / "rocket.jpg").save(jpeg, "JPEG")
    (root / "bad/truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 3])
    (root / "bad/notes.txt").write_text("walks skip files that are not named like images\n")
    return images


@pytest.fixture(scope="module")
def collection(tmp_path_factory, golden_dir) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("collection")
    return root, _build_collection(root, golden_dir)


def _by_path(out: Path) -> dict[str, object]:
    rows = read_rows(out)
    by_path = {row.path: row for row in rows}
    assert len(by_path) == len(rows), "a file appears more than once"
    return by_path


def test_classify_records_rows_and_errors_then_resumes(served_app, worker, collection, tmp_path, capsys):
    root, images = collection
    out = tmp_path / "results.csv"
    url = served_app.url
    info = requests.get(f"{url}/api/v1/models", timeout=10).json()
    default, version = info["default"], info["version"]

    assert main(["classify", str(root), "--out", str(out), "--url", url]) == 0
    summary = capsys.readouterr().out
    rows = _by_path(out)
    assert set(rows) == {str(p) for p in images} | {str(root / bad) for bad in BAD}
    for bad, code in BAD.items():
        row = rows[str(root / bad)]
        assert (row.status, row.error_code, row.label) == ("error", code, "")
    for path in images:
        row = rows[str(path)]
        assert row.ok, row.error
        assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and row.size == path.stat().st_size
        assert (row.model, row.model_version) == (default, version)  # no --model: the service's default
        assert row.label == row.top5[0]["label"] and len(row.top5) == 5
        assert [p["score"] for p in row.top5] == sorted((p["score"] for p in row.top5), reverse=True)
    assert rows[str(root / "coffee/coffee-0.png")].label == "espresso"
    assert summary.startswith(f"finished: {len(rows)} files in results.csv: {len(images)} classified, 4 failed\n")
    assert "espresso" in summary
    assert all(str(root / bad) in summary for bad in BAD)  # the failed files are named
    with open(out, newline="") as f:  # a plain CSV reader sees the same rows, the top-5 as columns and as JSON
        plain = list(csv.DictReader(f))
    assert len(plain) == len(rows)
    for r in (r for r in plain if r["status"] == "ok"):
        top5 = json.loads(r["top5"])
        assert [r[f"label_{i}"] for i in range(1, 6)] == [p["label"] for p in top5]
        assert [float(r[f"score_{i}"]) for i in range(1, 6)] == [p["score"] for p in top5]
    errors = {r["error"] for r in plain if r["status"] == "error"}
    assert not any(e[:3].isdigit() for e in errors), errors  # the status code is not repeated in the message

    # A transient failure recorded earlier is retried by the next run; everything else is skipped.
    retried = str(images[0])
    text = out.read_text().splitlines()
    transient = ",".join([retried] + [""] * (len(CSV_FIELDS) - 4) + ["error", "service_unavailable", "503"])
    text = [line if not line.startswith(retried + ",") else transient for line in text]
    out.write_text("\n".join(text) + "\n")
    assert main(["classify", str(root), "--out", str(out), "--url", url]) == 0
    again = capsys.readouterr().out
    assert "this run: 1 of 1 files" in again and f"{len(rows) - 1} already done earlier" in again
    assert again.startswith(f"finished: {len(rows)} files in results.csv")  # the whole file, not this run
    rows_after = _by_path(out)
    assert set(rows_after) == set(rows) and rows_after[retried].ok


def test_explicit_file_is_sent_whatever_its_name(served_app, worker, collection, tmp_path, capsys):
    root, images = collection
    out = tmp_path / "named.jsonl"
    assert (
        main(["classify", str(root / "bad/notes.txt"), str(images[0]), "--out", str(out), "--url", served_app.url]) == 0
    )
    rows = _by_path(out)
    assert rows[str(root / "bad/notes.txt")].error_code == "unsupported_media_type"
    assert rows[str(images[0])].ok
    assert all(json.loads(line)["path"] for line in out.read_text().splitlines())


def test_organize_copies_links_and_uncertain(served_app, worker, collection, tmp_path, capsys):
    root, images = collection
    url = served_app.url
    copies, links = tmp_path / "sorted", tmp_path / "linked"
    assert main(["classify", str(root), "--out", str(tmp_path / "a.csv"), "--url", url, "--organize", str(copies)]) == 0
    rows = [row for row in read_rows(tmp_path / "a.csv") if row.ok]
    placed = sorted(p for p in copies.rglob("*") if p.is_file())
    assert len(placed) == len(rows) == len(images)
    assert all(not p.is_symlink() for p in placed)
    espresso = copies / "espresso"
    assert {p.read_bytes() for p in espresso.iterdir()} <= {p.read_bytes() for p in images}
    assert all(p.exists() for p in images), "originals are never moved"

    # Symlinks, and everything under 0.999 goes to _uncertain; organising again adds no duplicates.
    args = ["classify", str(root), "--url", url, "--organize", str(links), "--link", "--min-score", "0.999"]
    assert main([*args, "--out", str(tmp_path / "b.csv")]) == 0
    assert main([*args, "--out", str(tmp_path / "c.csv")]) == 0
    linked = list((links / UNCERTAIN).iterdir())
    assert len(linked) == len(images) and all(p.is_symlink() for p in linked)
    assert {p.resolve() for p in linked} == {p.resolve() for p in images}
    assert f"organized into {links}: 0 added, {len(images)} already there" in capsys.readouterr().out


def test_organize_a_finished_run_from_its_results_file(live_stack, collection, tmp_path, capsys):
    root, images = collection
    out, dest = tmp_path / "done.csv", tmp_path / "later"
    assert main(["classify", str(root), "--out", str(out), "--url", live_stack.config.url]) == 0
    capsys.readouterr()

    assert (
        main(["classify", str(root), "--out", str(out), "--url", live_stack.config.url, "--organize", str(dest)]) == 0
    )
    captured = capsys.readouterr()
    assert f"organizing the {len(images)} files already classified in {out}" in captured.err
    assert "this run: nothing new to classify" in captured.out
    assert f"organized into {dest}: {len(images)} added, 0 already there" in captured.out
    assert len([p for p in dest.rglob("*") if p.is_file()]) == len(images)


def _row_count(out: Path) -> int:
    return len(out.read_text().splitlines()) if out.exists() else 0


@pytest.fixture
def slow_server(make_app) -> Iterator[ServedApp]:
    """No cache, so every file reaches the worker (which the tests start with a delay per batch)."""
    served = ServedApp(make_app(cache_ttl_s=0))
    yield served
    served.stop()


def _refusals(status: str) -> float:
    """How many uploads this process's API has answered with ``status`` (its own metrics)."""
    labels = {"route": "/api/v1/predictions", "method": "POST", "status": status}
    return REGISTRY.get_sample_value("imgclf_http_requests_total", labels) or 0.0


def test_sigint_leaves_a_valid_file_and_the_rerun_completes(slow_server, start_worker, collection, tmp_path):
    root, images = collection
    start_worker(delay_s=SLOW_BATCH_S)
    out = tmp_path / "run.jsonl"
    argv = [str(IMGCLF), "classify", str(root), "--out", str(out), "--url", slow_server.url, "--concurrency", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: _row_count(out) >= 5 or proc.poll() is not None, timeout_s=30)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 130, stderr
    assert stdout.startswith("interrupted: ")
    assert "run the same command again to resume" in stdout
    first = _by_path(out)  # parses, no duplicates
    assert 5 <= len(first) < len(images) + len(BAD)

    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} already done earlier" in done.stdout
    rows = _by_path(out)
    assert set(rows) == {str(p) for p in images} | {str(root / bad) for bad in BAD}
    assert sum(row.ok for row in rows.values()) == len(images)


def test_retries_503_until_a_worker_is_back(slow_server, start_worker, collection, tmp_path):
    _root, images = collection
    out = tmp_path / "retry.csv"
    refused_before = _refusals("503")
    files = {"image": images[0].read_bytes()}
    assert requests.post(f"{slow_server.url}/api/v1/predictions", files=files, timeout=10).status_code == 503
    argv = [str(IMGCLF), "classify", *map(str, images[:4]), "--out", str(out), "--url", slow_server.url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        # The CLI has been refused and tried again (503s beyond ours), and is still waiting.
        assert wait_until(lambda: _refusals("503") - refused_before >= 3, timeout_s=30)
        assert proc.poll() is None and _row_count(out) == 1, "waiting for a worker, nothing recorded yet"
    finally:
        start_worker(delay_s=SLOW_BATCH_S)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    rows = _by_path(out)
    assert len(rows) == 4 and all(row.ok for row in rows.values())
    assert "4 files in retry.csv: 4 classified, 0 failed" in stdout


@pytest.fixture(scope="module")
def slow_stack(stack_factory):
    """A whole stack (nginx can be stopped under the CLI): no cache and a delay per batch."""
    return stack_factory(
        "cli-slow", workers=1, env={"CACHE_TTL_S": "0"}, worker_argv={"worker-1": slow_worker.argv(150)}
    )


def test_a_server_that_goes_away_ends_the_run_after_max_wait(slow_stack, collection, tmp_path):
    root, images = collection
    out = tmp_path / "gone.csv"
    url = slow_stack.config.url
    argv = [
        str(IMGCLF),
        "classify",
        str(root),
        "--out",
        str(out),
        "--url",
        url,
        "--concurrency",
        "2",
        "--max-wait",
        "3",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _row_count(out) >= 5 or proc.poll() is not None, timeout_s=30)  # the header, four rows
        slow_stack.stop("nginx")  # nothing listens any more: connections are refused
        gone = time.monotonic()
        stdout, _ = proc.communicate(timeout=30)
        waited = time.monotonic() - gone
    finally:
        slow_stack.start("nginx")
    assert proc.returncode == 1
    # run-wide: --max-wait (3 s) once, not per file; its clock may start a moment before `gone`
    assert 2.5 <= waited < 15, waited
    assert stdout.startswith("stopped: ")
    assert "gave up: " in stdout and "Connection refused" in stdout
    rows = _by_path(out)  # a valid file; the files not done yet are simply not in it
    assert 4 <= len(rows) < len(images) + len(BAD)

    again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{len(rows)} already done earlier" in again.stdout

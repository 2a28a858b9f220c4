"""The bulk client's own logic, without a server: resuming from an output file, retry decisions,
organizing into folders, matching class folders, and which files a run covers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from imgclf.client import TRANSIENT_CODES, ApiError, RetryPolicy
from imgclf.evaluate import label_index, labelled_files
from imgclf.files import PathsProblem, collect
from imgclf.organize import UNCERTAIN, Organizer, folder_name
from imgclf.results import FIELDS, Row, read_rows, resume

TOP5 = [{"label": "espresso", "wnid": "n07920052", "score": 0.95}]


def ok_row(path: str) -> Row:
    return Row(path, 10, "ab" * 32, "espresso", 0.95, TOP5, "efficientnet_lite0", "1")


def error_row(path: str, code: str) -> Row:
    return Row(path, status="error", error_code=code, error=f"{code} happened")


@pytest.mark.parametrize("name", ["out.csv", "out.jsonl"])
def test_rows_round_trip_through_the_output_file(tmp_path, name):
    out = tmp_path / name
    writer, kept = resume(out)
    assert kept == []
    rows = [ok_row("/a.png"), error_row("/b.png", "unsupported_media_type")]
    for row in rows:
        writer.write(row)
    writer.close()
    assert read_rows(out) == rows


def test_resume_keeps_final_rows_and_retries_transient_failures(tmp_path):
    out = tmp_path / "out.csv"
    writer, _ = resume(out)
    for row in (ok_row("/ok.png"), error_row("/bad.png", "unprocessable_image"), error_row("/busy.png", "queue_full")):
        writer.write(row)
    writer.close()
    writer, kept = resume(out)
    writer.close()
    assert [row.path for row in kept] == ["/ok.png", "/bad.png"]  # a 422 will not change on a rerun; a 429 may
    assert [row.path for row in read_rows(out)] == ["/ok.png", "/bad.png"]


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"path": "/a.png", "status": "ok", "label": "x"}) + "\n" + '{"path": "/b.pn')
    assert [row.path for row in read_rows(out)] == ["/a.png"]
    csv_out = tmp_path / "out.csv"
    csv_out.write_text(",".join(FIELDS) + "\n/a.png,1,,x,0.5,,efficientnet_lite0,1,ok,,\n/b.png,2")
    assert [row.path for row in read_rows(csv_out)] == ["/a.png"]


def test_the_last_row_of_a_path_wins(tmp_path):
    out = tmp_path / "out.jsonl"
    lines = [error_row("/a.png", "service_unavailable"), ok_row("/a.png")]
    out.write_text("".join(json.dumps(vars(row)) + "\n" for row in lines))
    _writer, kept = resume(out)
    assert kept == [ok_row("/a.png")]


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        *((code, True) for code in ("queue_full", "rate_limited", "service_unavailable", "timeout")),
        *((code, True) for code in ("connection_error", "http_error")),
        *((code, False) for code in ("unsupported_media_type", "unauthorized")),
    ],
)
def test_which_failures_are_retried(code, transient):
    assert (code in TRANSIENT_CODES) is transient
    assert ApiError(503, code, "x").transient is transient
    assert error_row("/a.png", code).retry_on_rerun is transient


def test_retry_waits_double_and_never_less_than_retry_after():
    policy = RetryPolicy(base_s=1.0, cap_s=20.0)
    assert 0.8 <= policy.delay(1, None) <= 1.2 and 3.2 <= policy.delay(3, None) <= 4.8
    assert 16 <= policy.delay(10, None) <= 24  # capped
    assert policy.delay(1, 7.0) == 7.0


def _response(status: int, body: bytes, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, body
    response.headers = requests.structures.CaseInsensitiveDict(headers)
    return response


def test_api_errors_read_the_envelope_or_fall_back():
    envelope = json.dumps({"error": {"code": "queue_full", "message": "busy"}, "request_id": "r"}).encode()
    error = ApiError.from_response(_response(429, envelope, {"Retry-After": "3"}))
    assert (error.status, error.code, error.message) == (429, "queue_full", "busy")
    assert error.retry_after_s == 3.0 and error.transient
    proxy = ApiError.from_response(_response(502, b"<html>bad gateway</html>", {"Retry-After": "Wed, 21 Oct 2015"}))
    assert (proxy.code, proxy.retry_after_s, proxy.transient) == ("http_error", None, True)
    assert ApiError.from_response(_response(404, b"nope", {})).code == "http_404"


def test_label_folders_become_safe_names():
    assert folder_name("tiger cat") == "tiger_cat"
    assert folder_name("crane (bird)") == "crane_bird"
    assert folder_name("../../etc") == "etc" and folder_name("..") == "_unlabelled"


def test_organizer_never_overwrites_and_sorts_uncertain_apart(tmp_path):
    source = tmp_path / "in" / "photo.png"
    source.parent.mkdir()
    source.write_bytes(b"pixels")
    out = tmp_path / "out"
    organizer = Organizer(out, min_score=0.9)
    assert organizer.place(Row(str(source), label="espresso", score=0.95))
    assert not organizer.place(Row(str(source), label="espresso", score=0.95))  # already there: nothing added
    (out / "espresso" / "photo.png").write_bytes(b"another photo of that name")
    assert organizer.place(Row(str(source), label="espresso", score=0.95))
    assert (out / "espresso" / "photo.png").read_bytes() == b"another photo of that name"  # never overwritten
    assert (out / "espresso" / "photo-1.png").read_bytes() == b"pixels"
    assert organizer.place(Row(str(source), label="espresso", score=0.5))
    assert (out / UNCERTAIN / "photo.png").read_bytes() == b"pixels"
    assert Organizer(tmp_path / "links", link=True).place(Row(str(source), label="cup", score=0.9))
    linked = tmp_path / "links" / "cup" / "photo.png"
    assert linked.is_symlink() and linked.resolve() == source.resolve()
    assert source.read_bytes() == b"pixels"  # the original stays


def test_class_folders_match_label_names_or_wnids(tmp_path):
    names = {"n01": "tiger cat", "n02": "crane", "n03": "crane"}  # ImageNet has two "crane"s
    labels = [{"index": i, "wnid": wnid, "name": name} for i, (wnid, name) in enumerate(names.items())]
    index = label_index(labels)
    assert index["tiger cat"] == {"n01"} and index["n01"] == {"n01"} and index["crane"] == {"n02", "n03"}
    for folder in ("Tiger_Cat", "n02", "unknown"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.jpg").write_bytes(b"x")
    files, unknown = labelled_files(tmp_path, labels)
    assert unknown == ["unknown"]
    assert sorted(name for name, _ in files.values()) == ["Tiger_Cat", "n02"]


def test_a_run_covers_images_in_folders_and_every_named_file(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("a.JPG", "b/c.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = collect([tmp_path, tmp_path / "notes.txt", tmp_path / "a.JPG"])
    expected = [tmp_path / "a.JPG", tmp_path / "b" / "c.png", tmp_path / "notes.txt"]
    assert found == [Path(os.path.abspath(p)) for p in expected]  # sorted walk, no duplicates
    with pytest.raises(PathsProblem, match=r"gone\.jpg"):  # a mistake in the command: nothing is sent
        collect([tmp_path, tmp_path / "gone.jpg"])

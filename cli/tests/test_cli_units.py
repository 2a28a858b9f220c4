"""imgclf's decisions without a server: paths, the run-wide outage clock, connection reasons,
CSV columns, idempotent organising and the summary's wording."""

from __future__ import annotations

import csv
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from imgclf.cli import main
from imgclf.client import ApiError, Client, Outage, RetryPolicy, ServerGone, Unreachable, connection_reason
from imgclf.files import PathsProblem, collect
from imgclf.organize import Organizer
from imgclf.results import CSV_FIELDS, ResultWriter, Row, read_rows
from imgclf.summary import Summary
from scripts.ports import unused_port

TOP5 = [{"label": f"class {i}", "wnid": f"n{i}", "score": round(0.5 / i, 3)} for i in range(1, 6)]


def test_missing_paths_are_named_before_anything_is_sent(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(PathsProblem, match=r"no such file or folder: .*/nope, .*/gone\.jpg"):
        collect([tmp_path / "a.jpg", tmp_path / "nope", tmp_path / "gone.jpg"])


def test_a_folder_without_images_is_a_problem_not_an_empty_run(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(PathsProblem, match="no image files in"):
        collect([tmp_path])


def test_outage_clock_is_run_wide_and_reset_by_any_answer() -> None:
    outage = Outage(max_wait_s=0.2)
    assert outage.remaining_s() == float("inf")
    outage.failed(ApiError(0, "connection_error", "x"))
    time.sleep(0.05)
    outage.failed(ApiError(0, "connection_error", "y"))  # a second failure does not restart the clock
    assert 0 < outage.remaining_s() < 0.16
    outage.ended()
    assert outage.remaining_s() == float("inf")


def test_connection_reason_is_short() -> None:
    port = unused_port()
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert connection_reason(caught.value) == "Connection refused"


def test_unreachable_server_fails_the_check_within_seconds() -> None:
    client = Client(f"http://127.0.0.1:{unused_port()}")
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"^cannot reach http://127\.0\.0\.1:\d+: Connection refused$"):
        client.check_ready()
    assert time.monotonic() - started < 5


def test_requests_give_up_run_wide_after_max_wait_without_a_server() -> None:
    client = Client(f"http://127.0.0.1:{unused_port()}", retry=RetryPolicy(max_tries=2, max_wait_s=0.5, base_s=0.05))
    started = time.monotonic()
    with pytest.raises(ServerGone, match=r"unavailable for 0\.5 s \(cannot reach .*: Connection refused\)"):
        client.classify("a.jpg", b"x")  # connection errors do not use up --max-tries: the clock decides
    assert 0.5 <= time.monotonic() - started < 3


def test_csv_has_top5_columns_beside_the_json_and_errors_without_status(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    writer = ResultWriter(out, [])
    writer.write(Row("/a.jpg", 3, "abc", "class 1", 0.5, TOP5, "1"))
    error = ApiError(415, "unsupported_media_type", "The file is not an image we can read.")
    writer.write(Row.failure("/b.jpg", b"xyz", error))
    writer.close()
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == CSV_FIELDS
        ok, failed = list(reader)
    assert [ok[f"label_{i}"] for i in range(1, 6)] == [p["label"] for p in TOP5]
    assert [float(ok[f"score_{i}"]) for i in range(1, 6)] == [p["score"] for p in TOP5]
    assert (
        failed["error"] == "The file is not an image we can read." and failed["error_code"] == "unsupported_media_type"
    )
    assert all(failed[f"label_{i}"] == "" for i in range(1, 6))
    assert [row.top5 for row in read_rows(out)] == [TOP5, None]  # resuming reads the JSON column back


def test_organizing_twice_adds_nothing_but_a_different_file_gets_a_new_name(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "x").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(b"first")
    (photos / "x" / "a.jpg").write_bytes(b"other")  # same name, different file
    rows = [
        Row(str(photos / "a.jpg"), label="cat", score=0.9),
        Row(str(photos / "x" / "a.jpg"), label="cat", score=0.9),
    ]
    for link in (False, True):
        dest = tmp_path / f"sorted-{link}"
        organizer = Organizer(dest, link=link)
        assert [organizer.place(row) for row in rows] == [True, True]
        assert [organizer.place(row) for row in rows] == [False, False]
        assert sorted(p.name for p in (dest / "cat").iterdir()) == ["a-1.jpg", "a.jpg"]


def test_summary_counts_the_whole_file_names_failures_and_says_how_to_resume(tmp_path: Path) -> None:
    rows = [Row(f"/p/{i}.jpg", label="cat", score=0.9) for i in range(3)]
    rows += [Row(f"/p/bad{i}.jpg", status="error", error_code="unsupported_media_type") for i in range(12)]
    rows.append(Row("/p/later.jpg", status="error", error_code="service_unavailable"))
    summary = Summary(out=tmp_path / "r.csv", todo=4, earlier=12, sent=2, interrupted=True)
    text = summary.render(rows)
    assert text.startswith("interrupted: 16 files in r.csv: 3 classified, 13 failed\n")
    assert "this run: 2 of 4 files" in text and "12 already done earlier" in text
    assert "failed: /p/bad0.jpg (unsupported_media_type), " in text
    assert "… and 3 more: the rows with status 'error' in r.csv" in text
    assert text.endswith("run the same command again to resume: the 16 files in r.csv are skipped")

    finished = Summary(out=tmp_path / "r.csv", todo=0, earlier=16).render(rows)
    assert "this run: nothing new to classify; 16 already done earlier" in finished
    assert finished.endswith("1 failed for now (server busy or unavailable): run the same command again to retry them")


def test_cli_exits_2_within_seconds_when_the_server_cannot_be_reached(tmp_path: Path, golden_dir: Path, capsys) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    started = time.monotonic()
    assert main(["classify", str(golden_dir), "--out", str(tmp_path / "r.csv"), "--url", url]) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.startswith(f"imgclf: cannot reach {url}: Connection refused\nhint: is the service running?")
    assert not (tmp_path / "r.csv").exists()  # nothing was started


def test_cli_exits_2_on_a_missing_path(tmp_path: Path, golden_dir: Path, capsys) -> None:
    out = tmp_path / "r.csv"
    assert main(["classify", str(golden_dir), str(tmp_path / "typo"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"imgclf: no such file or folder: {tmp_path / 'typo'}; nothing was classified\n"
    assert main(["predict", str(tmp_path / "typo.jpg")]) == 2
    assert not out.exists()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every POST like the API would, and records the request line it got."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(self.requestline)
        body = b'{"predictions": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[int]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("no_proxy", "via_proxy"), [("", True), ("127.0.0.1", False)])
def test_environment_proxy_settings_still_apply_though_read_once(
    recorder: int, monkeypatch: pytest.MonkeyPatch, no_proxy: str, via_proxy: bool
) -> None:
    """HTTP_PROXY and NO_PROXY as requests honours them; changing them after the start changes nothing."""
    target = unused_port() if via_proxy else recorder  # through the proxy, nothing needs to listen there
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{recorder}")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    client = Client(f"http://127.0.0.1:{target}", retry=RetryPolicy(max_tries=1, max_wait_s=0))
    monkeypatch.setenv("NO_PROXY", "" if no_proxy else "127.0.0.1")  # read once: no effect any more
    try:
        assert client.classify("a.png", b"not read by the recorder") == {"predictions": []}
    finally:
        client.close()
    path = "/api/v1/predictions HTTP/1.1"
    assert _Recorder.seen == [f"POST http://127.0.0.1:{target}{path}" if via_proxy else f"POST {path}"]
    assert client.session.trust_env is False

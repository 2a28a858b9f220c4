"""`make bench --smoke` end to end: the real stack, real photos, a schema-valid report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import pytest

from loadtest import bench_tables
from loadtest.ordinary import REFERENCE_PHOTOS
from loadtest.peers import bentoml_peer

LOADTEST = Path(__file__).resolve().parents[1]
ROOT = LOADTEST.parent

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory) -> dict:
    out_dir = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "BENCH_SMOKE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--out-dir", str(out_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "wrote" in proc.stdout
    return json.loads((out_dir / "latest.json").read_text())


def test_report_matches_the_schema(smoke_report: dict) -> None:
    schema = json.loads((LOADTEST / "bench_schema.json").read_text())
    errors = [f"{e.instance_path}: {e.message}" for e in jsonschema_rs.validator_for(schema).iter_errors(smoke_report)]
    assert errors == []
    assert smoke_report["smoke"] is True


def test_every_concurrency_level_served_without_errors(smoke_report: dict) -> None:
    levels = smoke_report["end_to_end"]
    assert [f["concurrency"] for f in levels] == [1, 4, 16, 32]
    for figures in levels:
        assert figures["errors"] == 0, figures["status_counts"]
        assert figures["images_per_s"] > 0
        assert figures["breakdown"]["inference_p50_ms"] > 0
    assert smoke_report["in_process"]["batch1"]["images_per_s"] > 0


def test_burst_is_answered_and_latency_recovers(smoke_report: dict) -> None:
    burst = smoke_report["burst"]
    assert burst["requests"] > 0
    assert burst["timeouts_or_connection_errors"] == 0, burst["by_status"]
    assert burst["recovered"], burst


def test_every_service_reports_a_peak_rss(smoke_report: dict) -> None:
    rss = smoke_report["peak_rss"]["services_mb"]
    assert all(rss[name] > 1 for name in ("redis", "worker-1", "api", "nginx")), rss


def test_ordinary_client_stage_against_the_float_reference_loop(smoke_report: dict) -> None:
    section = smoke_report["ordinary"]
    service = section["service"]
    assert [f["concurrency"] for f in service["levels"]] == [1, 8]
    for figures in service["levels"]:
        assert figures["errors"] == 0, figures["status_counts"]
        assert figures["service_cpu_ms_per_image"]["api"] > 0
        assert figures["service_cpu_ms_per_image"]["worker-1"] > 0
    loop = service["reference_loop"]
    assert loop["model"].startswith("efficientnet_lite0:")
    assert loop["num_threads"] == "LiteRT default" and loop["two_threads"]["images"] >= len(REFERENCE_PHOTOS)
    assert service["best_over_loop"] == round(service["best_images_per_s"] / loop["images_per_s"], 3)
    photos = section["photos"]
    assert len(photos["names"]) == 6
    assert (photos["fallback_reason"] is None) == photos["source"].endswith("imagenet-sample-500")
    assert section["bentoml"] == {"skipped": "BENCH_PEERS=0"}  # the smoke run leaves the peer out


def test_targets_table_covers_every_target(smoke_report: dict) -> None:
    rows = {row["target"]: row for row in smoke_report["targets"]}
    assert len(rows) == 7
    assert all(row["met"] in (True, False, None) for row in rows.values())
    assert rows["p99 at c=32 (ordinary client), 0 errors"]["met"] is None  # the smoke run stops at c=8


def test_readme_tables_render_every_run_and_the_median(smoke_report: dict) -> None:
    other = json.loads(json.dumps(smoke_report))
    other["ordinary"]["service"]["best_over_loop"] = smoke_report["ordinary"]["service"]["best_over_loop"] + 1.0
    text = bench_tables.render([smoke_report, other, smoke_report])
    first = smoke_report["ordinary"]["service"]["best_over_loop"]
    row = next(line for line in text.splitlines() if line.startswith("| best images/s"))
    assert f"{first:.3f}, {first + 1.0:.3f}, {first:.3f} → **{first:.3f}**" in row
    assert f"| BentoML {bentoml_peer.version()}, 2 workers, adaptive batching | not measured |" in text  # no peer

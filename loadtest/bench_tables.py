"""The README's performance tables from several `make bench` results: every run's figure and the median.

``python -m loadtest.bench_tables loadtest/results/bench-A.json bench-B.json bench-C.json`` prints
Markdown for the sections of README "Performance"; a target counts as met when its median meets it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from loadtest import targets
from loadtest.peers import bentoml_peer
from loadtest.targets import level_at

Getter = Callable[[dict], float | None]


def _ours(run: dict) -> dict:
    return run["ordinary"]["service"]


def _peer(run: dict) -> dict | None:
    stage = run["ordinary"]["bentoml"]
    return None if "skipped" in stage else stage


def _at(stage_of: Callable[[dict], dict | None], concurrency: int, *keys: str) -> Getter:
    """A level's figure (e.g. latency_ms.p99 at c=32), None where that level was not run."""

    def get(run: dict) -> float | None:
        stage = stage_of(run)
        value: object = level_at(stage, concurrency) if stage else None
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, int | float) else None

    return get


def _cell(runs: list[dict], get: Getter, digits: int = 2) -> tuple[str, float | None]:
    """'a, b, c → **median**' and the median (None when no run has the figure)."""
    values = [v for v in (get(r) for r in runs) if v is not None]
    if not values:
        return "not measured", None
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}", median
    return ", ".join(f"{v:.{digits}f}" for v in values) + f" → **{median:.{digits}f}**", median


def _met(ok: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[ok]


def targets_table(runs: list[dict]) -> list[str]:
    def loop_margin(run: dict) -> float | None:
        p50 = _at(_ours, 1, "latency_ms", "p50")(run)
        return None if p50 is None else p50 - _ours(run)["reference_loop"]["latency_p50_ms"]

    def recovery(run: dict) -> float | None:
        return run["burst"]["recovery_s"] if run["burst"]["recovered"] else float("inf")

    ours, ours_median = _cell(runs, lambda r: _ours(r)["best_over_loop"], 3)
    peer, peer_median = _cell(runs, lambda r: (p := _peer(r)) and p["best_over_loop"], 3)
    margin, margin_median = _cell(runs, loop_margin, 1)
    p99, p99_median = _cell(runs, _at(_ours, 32, "latency_ms", "p99"), 0)
    errors_c32 = sum(_at(_ours, 32, "errors")(r) or 0 for r in runs)
    back, back_median = _cell(runs, recovery, 2)
    rss, rss_median = _cell(runs, lambda r: r["peak_rss"]["total_mb"], 0)
    cli, cli_median = _cell(runs, lambda r: r["cli"].get("ratio"), 3)
    burst_clients = "/".join(sorted({str(r["burst"]["concurrency"]) for r in runs}))  # smoke runs burst less

    def check(median: float | None, ok: Callable[[float], bool]) -> str:
        return _met(None if median is None else ok(median))

    rows = [
        (
            "best images/s (ordinary client, c ≤ 16, 0 errors) ÷ reference loop",
            f"≥ {targets.LOOP_RATIO}",
            ours,
            check(ours_median, lambda m: m >= targets.LOOP_RATIO),
        ),
        (
            "the same ratio for BentoML, 2 workers (to be ahead of)",
            "below ours",
            peer,
            check(peer_median, lambda m: ours_median is not None and ours_median > m),
        ),
        (
            "p50 at c=1 minus the reference loop's p50 (ms)",
            f"≤ {targets.P50_MARGIN_MS:g}",
            margin,
            check(margin_median, lambda m: m <= targets.P50_MARGIN_MS),
        ),
        (
            "p99 at c=32, ordinary client (ms)",
            f"≤ {targets.P99_C32_MS:g}, 0 errors",
            f"{p99}; {errors_c32} errors",
            check(p99_median, lambda m: m <= targets.P99_C32_MS and errors_c32 == 0),
        ),
        (
            f"back to normal after a {burst_clients}-client burst (s)",
            f"≤ {targets.RECOVERY_S:g}",
            back,
            check(back_median, lambda m: m <= targets.RECOVERY_S),
        ),
        (
            "peak RSS of all services together (MB)",
            f"≤ {targets.RSS_MB:g}",
            rss,
            check(rss_median, lambda m: m <= targets.RSS_MB),
        ),
        (
            "`imgclf classify` ÷ closed loop at c=4",
            f"≥ {targets.CLI_RATIO}",
            cli,
            check(cli_median, lambda m: m >= targets.CLI_RATIO),
        ),
    ]
    return ["| target | goal | runs → median | met |", "|---|---|---|---|", *(f"| {' | '.join(r)} |" for r in rows)]


def ordinary_table(runs: list[dict]) -> list[str]:
    lines = [
        "| system | reference loop images/s | best images/s | best ÷ loop | p50 at c=1 (ms) | p99 at c=32 (ms) "
        "| peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    systems: list[tuple[str, Callable[[dict], dict | None], Getter]] = [
        ("this service", _ours, lambda r: r["peak_rss"]["total_mb"]),
        (
            f"BentoML {bentoml_peer.version()}, 2 workers, adaptive batching",
            _peer,
            lambda r: (p := _peer(r)) and p["peak_rss"]["total_mb"],
        ),
    ]
    for name, stage_of, rss in systems:
        cells = [
            _cell(runs, lambda r, s=stage_of: (st := s(r)) and st["reference_loop"]["images_per_s"], 1)[0],
            _cell(runs, lambda r, s=stage_of: (st := s(r)) and st["best_images_per_s"], 1)[0],
            _cell(runs, lambda r, s=stage_of: (st := s(r)) and st["best_over_loop"], 3)[0],
            _cell(runs, _at(stage_of, 1, "latency_ms", "p50"), 1)[0],
            _cell(runs, _at(stage_of, 32, "latency_ms", "p99"), 0)[0],
            _cell(runs, rss, 0)[0],
        ]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += [
        "",
        "| concurrency | this service: images/s, p50, p99 (ms) | BentoML: images/s, p50, p99 (ms) |",
        "|---|---|---|",
    ]
    for c in (1, 8, 16, 32):
        cells = []
        for stage_of in (_ours, _peer):
            figures = [_cell(runs, _at(stage_of, c, "images_per_s"), 1)[1]]
            figures += [_cell(runs, _at(stage_of, c, "latency_ms", q), 0)[1] for q in ("p50", "p99")]
            cells.append(
                ", ".join("–" if v is None else f"{v:.1f}" if i == 0 else f"{v:.0f}" for i, v in enumerate(figures))
            )
        lines.append(f"| {c} | {' | '.join(cells)} |")
    return lines


def cpu_table(runs: list[dict]) -> list[str]:
    """Median CPU ms per image of every service at c=16 (a smoke run: its highest level below), both generators."""
    concurrency = max(f["concurrency"] for f in _ours(runs[0])["levels"] if f["concurrency"] <= 16)
    names = list(level_at(_ours(runs[0]), concurrency)["service_cpu_ms_per_image"])
    lines = [f"| at c={concurrency}, median of {len(runs)} | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    sources = [
        ("ordinary client, 6 ImageNet photos", lambda r: level_at(_ours(r), concurrency)),
        (
            "low-overhead generator, 24 generated photos",
            lambda r: level_at({"levels": r["end_to_end"]}, concurrency),
        ),
    ]
    for label, level_of in sources:
        values = []
        for name in names:
            found = [lv["service_cpu_ms_per_image"][name] for r in runs if (lv := level_of(r))]
            values.append(f"{statistics.median(found):.2f}" if found else "–")
        lines.append(f"| {label} | {' | '.join(values)} |")
    return lines


def low_overhead_table(runs: list[dict]) -> list[str]:
    lines = [
        "| low-overhead generator | images/s | ÷ limit | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    limit = _cell(runs, lambda r: r["in_process"]["batch1"]["images_per_s"], 1)[0]
    limit_p50 = _cell(runs, lambda r: r["in_process"]["batch1"]["latency_p50_ms"], 1)[0]
    lines.append(f"| in-process limit, default model, batch 1 | {limit} | | {limit_p50} | | | |")
    for c in runs[0]["config"]["levels"]:

        def get(*keys: str, c: int = c) -> Getter:
            def value(run: dict) -> float | None:
                level = level_at({"levels": run["end_to_end"]}, c)
                for key in keys:
                    level = level.get(key) if isinstance(level, dict) else None
                return level if isinstance(level, int | float) else None

            return value

        cells = [_cell(runs, get("images_per_s"), 1)[0], _cell(runs, get("ratio_to_in_process"), 2)[0]]
        cells += [_cell(runs, get("latency_ms", q), 0)[0] for q in ("p50", "p95", "p99")]
        errors = sum(get("errors")(r) or 0 for r in runs)
        lines.append(f"| concurrency {c} | {' | '.join(cells)} | {errors} |")
    return lines


def render(runs: list[dict]) -> str:
    loads = [round(v, 1) for r in runs for v in (r["machine"]["loadavg_start"][0], r["machine"]["loadavg_end"][0])]
    photos = runs[0]["ordinary"]["photos"]
    head = [
        f"{len(runs)} run(s), {runs[0]['timestamp']} … {runs[-1]['timestamp']}; 1-minute load average at the "
        f"starts and ends: {min(loads)}–{max(loads)}; photos of the ordinary client: {photos['source']}"
        + (f" (FALLBACK: {photos['fallback_reason']})" if photos["fallback_reason"] else f" {photos['names']}"),
    ]
    sections = [targets_table(runs), ordinary_table(runs), cpu_table(runs), low_overhead_table(runs)]
    return "\n\n".join("\n".join(lines) for lines in [head, *sections])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="bench-<timestamp>.json files of `make bench`")
    args = parser.parse_args(argv)
    print(render([json.loads(p.read_text()) for p in args.results]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

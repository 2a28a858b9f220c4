"""The performance targets (issue #15) computed from one `make bench` result: goal, measured, met.

`met` is None where the run could not measure a target (a smoke run without concurrency 32,
a skipped peer or CLI); a missed target is reported, it does not fail the bench.
"""

from __future__ import annotations

LOOP_RATIO = 2.0  # best images/s (c <= 16, zero errors) over the reference loop
P50_MARGIN_MS = 5.0  # p50 at c=1 over the loop's per-image latency
P99_C32_MS = 600.0
RECOVERY_S = 2.0
RSS_MB = 1024.0
CLI_RATIO = 0.95


def _row(target: str, goal: str, measured: object, met: bool | None) -> dict:
    return {"target": target, "goal": goal, "measured": measured, "met": met}


def level_at(stage: dict, concurrency: int) -> dict | None:
    """A stage's figures at one concurrency (``stage["levels"]``), None when it was not run."""
    return next((f for f in stage.get("levels", []) if f["concurrency"] == concurrency), None)


def _throughput(ours: dict, peer: dict) -> list[dict]:
    ratio = ours["best_over_loop"]
    rows = [
        _row(
            "best images/s (ordinary client, c <= 16, 0 errors) ÷ reference loop",
            f">= {LOOP_RATIO}",
            ratio,
            ratio >= LOOP_RATIO,
        )
    ]
    if "skipped" in peer:
        rows.append(_row("ahead of BentoML, 2 workers (best ÷ its own loop)", "> BentoML", peer["skipped"], None))
    else:
        theirs = peer["best_over_loop"]
        rows.append(
            _row(
                "ahead of BentoML, 2 workers (best ÷ its own loop)", "> BentoML", f"{ratio} vs {theirs}", ratio > theirs
            )
        )
    return rows


def _latency(ours: dict) -> list[dict]:
    loop_ms = ours["reference_loop"]["latency_p50_ms"]
    c1, c32 = level_at(ours, 1), level_at(ours, 32)
    p50 = c1["latency_ms"]["p50"] if c1 else None
    rows = [
        _row(
            "p50 at c=1 (ordinary client)",
            f"<= loop {loop_ms} + {P50_MARGIN_MS:g} ms",
            p50,
            p50 <= loop_ms + P50_MARGIN_MS if p50 is not None else None,
        )
    ]
    if c32 is None:
        rows.append(_row("p99 at c=32 (ordinary client), 0 errors", f"<= {P99_C32_MS:g} ms", "not run", None))
    else:
        p99 = c32["latency_ms"]["p99"]
        rows.append(
            _row(
                "p99 at c=32 (ordinary client), 0 errors",
                f"<= {P99_C32_MS:g} ms",
                f"{p99} ({c32['errors']} errors)",
                p99 <= P99_C32_MS and c32["errors"] == 0,
            )
        )
    return rows


def _service(data: dict) -> list[dict]:
    burst, rss, cli = data["burst"], data["peak_rss"], data["cli"]
    recovered = burst["recovery_s"] if burst["recovered"] else None
    rows = [
        _row(
            f"back to normal after a {burst['concurrency']}-client burst",
            f"<= {RECOVERY_S:g} s",
            recovered if recovered is not None else "not recovered",
            recovered is not None and recovered <= RECOVERY_S,
        ),
        _row("peak RSS of all services together", f"<= {RSS_MB:g} MB", rss["total_mb"], rss["total_mb"] <= RSS_MB),
    ]
    name, goal = "imgclf classify ÷ closed loop at c=4", f">= {CLI_RATIO}"
    if "skipped" in cli or cli["ratio"] is None:
        rows.append(_row(name, goal, cli.get("skipped", "no loop"), None))
    else:
        rows.append(_row(name, goal, cli["ratio"], cli["ratio"] >= CLI_RATIO and cli["exit_code"] == 0))
    return rows


def evaluate(data: dict) -> list[dict]:
    ours, peer = data["ordinary"]["service"], data["ordinary"]["bentoml"]
    return [*_throughput(ours, peer), *_latency(ours), *_service(data)]

"""The targets table of `make bench` computed from a result: met, missed, and not measured."""

from __future__ import annotations

import pytest

from loadtest import targets


def _stage(best_over_loop: float, p50_c1: float, p99_c32: float | None, errors_c32: int = 0) -> dict:
    levels = [{"concurrency": 1, "errors": 0, "latency_ms": {"p50": p50_c1, "p99": p50_c1 * 2}}]
    if p99_c32 is not None:
        levels.append({"concurrency": 32, "errors": errors_c32, "latency_ms": {"p50": 300.0, "p99": p99_c32}})
    return {"best_over_loop": best_over_loop, "reference_loop": {"latency_p50_ms": 20.0}, "levels": levels}


def _result(ours: dict, peer: dict, recovery_s: float | None = 1.0, rss_mb: float = 900.0, cli: dict | None = None):
    burst = {"concurrency": 200, "recovered": recovery_s is not None, "recovery_s": recovery_s}
    return {
        "ordinary": {"service": ours, "bentoml": peer},
        "burst": burst,
        "peak_rss": {"total_mb": rss_mb},
        "cli": cli if cli is not None else {"ratio": 0.97, "exit_code": 0},
    }


def _met(data: dict) -> dict[str, bool | None]:
    return {row["target"]: row["met"] for row in targets.evaluate(data)}


def test_every_target_met() -> None:
    data = _result(_stage(2.1, 24.9, 590.0), _stage(0.9, 25.0, None))
    assert set(_met(data).values()) == {True}


@pytest.mark.parametrize(
    ("data", "missed"),
    [
        (_result(_stage(1.99, 20.0, 500.0), _stage(0.9, 25.0, None)), "÷ reference loop"),
        (_result(_stage(2.1, 20.0, 500.0), _stage(2.2, 25.0, None)), "ahead of BentoML"),
        (_result(_stage(2.1, 25.1, 500.0), _stage(0.9, 25.0, None)), "p50 at c=1"),
        (_result(_stage(2.1, 20.0, 601.0), _stage(0.9, 25.0, None)), "p99 at c=32"),
        (_result(_stage(2.1, 20.0, 500.0, errors_c32=1), _stage(0.9, 25.0, None)), "p99 at c=32"),
        (_result(_stage(2.1, 20.0, 500.0), _stage(0.9, 25.0, None), recovery_s=2.5), "back to normal"),
        (_result(_stage(2.1, 20.0, 500.0), _stage(0.9, 25.0, None), recovery_s=None), "back to normal"),
        (_result(_stage(2.1, 20.0, 500.0), _stage(0.9, 25.0, None), rss_mb=1025.0), "peak RSS"),
        (_result(_stage(2.1, 20.0, 500.0), _stage(0.9, 25.0, None), cli={"ratio": 0.94, "exit_code": 0}), "imgclf"),
        (_result(_stage(2.1, 20.0, 500.0), _stage(0.9, 25.0, None), cli={"ratio": 0.99, "exit_code": 1}), "imgclf"),
    ],
)
def test_one_missed_target_is_the_only_no(data: dict, missed: str) -> None:
    met = _met(data)
    assert [name for name, ok in met.items() if ok is False] == [name for name in met if missed in name]
    assert None not in met.values()


def test_what_was_not_measured_is_neither_met_nor_missed() -> None:
    data = _result(_stage(2.1, 20.0, None), {"skipped": "BENCH_PEERS=0"}, cli={"skipped": "imgclf not installed"})
    met = _met(data)
    assert [name for name, ok in met.items() if ok is None] == [
        "ahead of BentoML, 2 workers (best ÷ its own loop)",
        "p99 at c=32 (ordinary client), 0 errors",
        "imgclf classify ÷ closed loop at c=4",
    ]
    assert set(met.values()) == {True, None}

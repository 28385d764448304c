"""make bench's arithmetic and its one table: paired rounds, goals, the 10M row, --previous."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from loadtests.bench.large import NOT_SEEDED
from loadtests.bench.run import (
    BenchError,
    Goal,
    Run,
    figure,
    markdown,
    median_run,
    paired_ratios,
    ratio,
    read_previous,
    summarise,
)
from loadtests.seed import SeedSize


def _run(rps: float, p95: float = 1.0) -> Run:
    return {"rps": rps, "p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 2, "errors": 0}


def _half(p95: float, achieved: float = 100) -> Run:
    return {"achieved_rps": achieved, "p95_ms": p95}


def test_the_ratio_is_the_median_of_paired_rounds_and_a_noisy_round_does_not_move_it() -> None:
    # Round 2 hit a noise burst on the baseline side only: a whole-run ratio would read 1.5x.
    service, baseline = [_run(900), _run(880), _run(910)], [_run(1000), _run(500), _run(1000)]
    ratios = paired_ratios(service, baseline)
    assert [round(r, 2) for r in ratios] == [0.9, 1.76, 0.91]
    row = ratio("list.vs", "list", ratios, Goal(">=", 0.8, "x"))
    assert (round(row.value or 0, 2), row.met, row.goal) == (0.91, True, ">= 0.80x")
    assert row.detail == "rounds 0.90, 1.76, 0.91"


def test_a_throughput_figure_is_the_median_run_with_that_runs_own_latencies() -> None:
    assert median_run([_run(900, 5.0), _run(700, 9.0), _run(1000, 1.0)]) == _run(900, 5.0)


def test_goals_are_judged_and_an_unmeasured_figure_never_meets_its_goal() -> None:
    assert figure("a", "a", 1.5, "s", goal=Goal("<=", 1.5, "s")).met is True
    assert figure("a", "a", 1.51, "s", goal=Goal("<=", 1.5, "s")).met is False
    assert figure("a", "a", 20.0, "ms", goal=Goal("<", 20, "ms")).met is False
    assert figure("a", "a", None, "x", NOT_SEEDED, Goal("<=", 1.2, "x")).met is False
    assert figure("a", "a", 3.0, "MB").met is None  # a figure without a goal


def _summary(*, large: bool) -> list[dict[str, Any]]:
    closed = {
        name: [_run(rps), _run(rps)]
        for name, rps in {
            "live.service": 950,
            "live.constant": 1000,
            "list.service": 800,
            "list.asyncpg": 1000,
            "list.sqlalchemy": 700,
            "list10m.service": 780,
        }.items()
    }
    opened = {"list.service": [_half(4.0), _half(5.0)], "list10m.service": [_half(6.0), _half(5.0)]}
    if not large:
        del closed["list10m.service"]
    measured = {name: (runs, opened.get(name, [_half(3.0), _half(3.0)])) for name, runs in closed.items()}
    figures = summarise(
        measured,
        login=_run(30),
        argon2_ms=25.0,
        startups=[1.2, 1.6, 1.3],
        rss_mb=130.0,
        size=SeedSize(100_000, 1_000),
        kept={"projects": 10_000_000, "seconds": 200.0} if large else None,
    )
    return [asdict(f) for f in figures]


def test_every_goal_of_the_issue_is_one_row_with_its_verdict() -> None:
    rows = {row["key"]: row for row in _summary(large=True)}
    verdicts = {
        key: (round(row["value"], 2), row["goal"], row["met"]) for key, row in rows.items() if row["goal"]
    }
    assert verdicts == {
        "list.vs_asyncpg": (0.8, ">= 0.80x", True),
        "list.p95_half": (4.5, "< 20.00 ms", True),
        "list10m.scaling": (1.25, "<= 1.20x", False),  # median of 6/4 and 5/5, round by round
        "live.vs_constant": (0.95, ">= 0.95x", True),
        "argon2.verify_ms": (25.0, "<= 30.00 ms", True),
        "startup.ready_s": (1.3, "<= 1.50 s", True),
        "api.rss_mb": (130.0, "<= 120 MB", False),
    }
    assert round(rows["list.vs_sqlalchemy"]["value"], 2) == 1.14  # printed, no goal
    assert rows["list10m.seed_seconds"]["value"] == 200.0


def test_without_the_large_cluster_its_rows_say_how_to_seed_it_and_its_goal_is_not_met() -> None:
    rows = {row["key"]: row for row in _summary(large=False)}
    assert rows["list10m.scaling"]["met"] is False
    text = markdown({"figures": list(rows.values())})
    scaling = next(line for line in text.splitlines() if "10M / 100k" in line)
    assert scaling == f"| list p95 at 50 %: 10M / 100k | {NOT_SEEDED} | <= 1.20x | NOT |"


def test_the_table_shows_each_figure_with_detail_goal_verdict_and_the_previous_runs_figure() -> None:
    now = [
        asdict(figure("list.vs_asyncpg", "list / asyncpg", 0.75, "x", "rounds 0.75", Goal(">=", 0.8, "x"))),
        asdict(figure("api.rss_mb", "RSS", 101.0, "MB", goal=Goal("<=", 120, "MB"))),
        asdict(figure("new.only", "new figure", 3.0, "s")),
    ]
    before = [
        asdict(figure("list.vs_asyncpg", "list / asyncpg", 0.7, "x")),
        asdict(figure("api.rss_mb", "RSS", 140.0, "MB")),
    ]
    result = {"figures": now, "cpus": 2, "rounds": 3, "seconds": 5, "load_average": {"before": [1.5, 1, 0.5]}}
    lines = markdown(result, {"figures": before}).splitlines()
    assert lines[0].startswith("2 CPUs, load average 1.50 / 1.00 / 0.50 before")
    assert "| figure | measured | goal | met | previous |" in lines
    assert "| list / asyncpg | 0.75x (rounds 0.75) | >= 0.80x | NOT | 0.70x |" in lines
    assert "| RSS | 101 MB | <= 120 MB | met | 140 MB |" in lines
    assert "| new figure | 3.00 s |  |  | - |" in lines
    assert "previous" not in markdown(result)


def test_previous_must_be_a_bench_json_with_figures(tmp_path: Path) -> None:
    old = tmp_path / "bench.json"
    old.write_text(json.dumps({"rows": [], "goals": []}))  # the table before figures
    with pytest.raises(BenchError, match="no figures"):
        read_previous(old)
    old.write_text(json.dumps({"figures": []}))
    assert read_previous(old) == {"figures": []}

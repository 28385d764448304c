"""make bench's arithmetic: alternating rounds, the median pair ratio, the table."""

from __future__ import annotations

from loadtests.bench.run import Pairing, markdown


def _run(rps: float, p95: float = 1.0) -> dict[str, float]:
    return {"rps": rps, "p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 2, "errors": 0}


def test_the_ratio_is_the_median_of_paired_rounds_and_a_noisy_round_does_not_move_it() -> None:
    # Round 2 hit a noise burst on the baseline side only: a whole-run ratio would read 1.5x.
    pairing = Pairing(
        "GET /x", "bare", [_run(900), _run(880), _run(910)], [_run(1000), _run(500), _run(1000)]
    )
    assert [round(r, 2) for r in pairing.ratios] == [0.9, 1.76, 0.91]
    assert round(pairing.ratio, 2) == 0.91
    service, baseline = pairing.rows()
    # Each side's median run, latencies from that same run.
    assert (service.rps, service.p95_ms, service.ratio) == (900, 1.0, pairing.ratio)
    assert (baseline.rps, baseline.implementation, baseline.ratio) == (1000, "bare", None)


def test_the_table_shows_ratios_rounds_and_goals() -> None:
    pairing = Pairing("GET /x", "bare", [_run(900)], [_run(1000)])
    service, baseline = pairing.rows()
    service.fixed_rate_rps, service.fixed_p95_ms = 450, 2.5
    text = markdown(
        {
            "rows": [vars(service), vars(baseline)],
            "round_ratios": {"GET /x": pairing.ratios},
            "goals": [{"goal": "x >= 1.0x", "measured": "0.90x", "met": False}],
        }
    )
    assert "| `GET /x` | service | 900 | 0.50 | 1.00 | 2.00 | 0.90x | 2.5 @ 450/s |" in text
    assert "| `GET /x` | bare | 1000 | 0.50 | 1.00 | 2.00 |  |  |" in text
    assert "Rounds (GET /x): 0.90x" in text
    assert "| x >= 1.0x | 0.90x | NO |" in text

"""make bench-redis: every client gives the rate limiter's script the same answers, on a real
Redis; and the table's noise verdict."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtests.bench.redis_clients import CLIENTS, compare, load_script, table
from testsupport.servers import redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        load_script(server.url)
        yield server.url


async def test_the_script_answers_the_same_through_every_client(redis_url: str) -> None:
    answers = {}
    for name, client in CLIENTS.items():
        a, b = f"test:{name}:a", f"test:{name}:b"
        async with client(redis_url) as call:
            answers[name] = [
                await call([a, b], [3, 60, 1, 60]),  # counted under both
                await call([a, b], [3, 60, 1, 60]),  # b is full: refused, and not counted under a
                await call([a], [3, 60]),
                await call([a], [3, 60]),  # a's third hit: the refused call did not count
                await call([a], [3, 60]),  # a is full: retry after the window, in whole seconds
            ]
    assert answers == {name: [0, 60, 0, 0, 60] for name in CLIENTS}


def test_a_difference_within_the_references_own_spread_is_noise() -> None:
    reference = [1000.0, 1100.0, 950.0]  # spread (1100 - 950) / 1000 = 15 %
    assert compare([1020.0, 1100.0, 960.0], reference) == (pytest.approx(1.01, abs=0.005), True)
    ratio, quiet = compare([500.0, 520.0, 480.0], reference)
    assert (round(ratio, 2), quiet) == (0.5, False)


def test_the_table_puts_each_client_beside_the_reference_and_says_why_one_is_missing() -> None:
    rounds = {
        "fast": [
            {"calls_per_s": 1000.0, "cpu_us_per_call": 30.0},
            {"calls_per_s": 1100.0, "cpu_us_per_call": 31.0},
        ],
        "slow": [
            {"calls_per_s": 400.0, "cpu_us_per_call": 90.0},
            {"calls_per_s": 420.0, "cpu_us_per_call": 95.0},
        ],
        "absent": [{"error": "ModuleNotFoundError: No module named 'absent'"}],
    }
    lines = table(rounds, "fast").splitlines()
    assert "| fast | 1050 | 30.5 |  |  |" in lines
    assert "| slow | 410 | 92.5 | 0.39x (beyond noise ±10%) | 3.03x (beyond noise ±3%) |" in lines
    assert "| absent | unavailable: ModuleNotFoundError: No module named 'absent' | | | |" in lines

"""Slow clients and oversized request heads against one API process under load: the other clients'
latency stays within the SLO (thresholds and objective from alerts/slo.yaml via kit/slo.py), and
every well-behaved request succeeds."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.chaos.harness import Figures, Profile, Stack, latency_verdict, leaky_5xx, report, start_load
from testsupport.abuse import Attack, attack
from testsupport.load import Balancer

pytestmark = pytest.mark.slow

SLOW_HEADS = 100  # slowloris connections, one header line every 0.5 s
SLOW_BODIES = 20  # bodies trickled one byte every 0.5 s
BIG_HEAD_CLIENTS = 2
BIG_HEAD_BYTES = {"short": 1 << 20, "full": 8 << 20}  # 1 MiB; 8 MiB in make chaos


async def test_slow_clients_and_oversized_heads_leave_other_clients_within_the_slo(
    profile: Profile, shared_stack: Stack
) -> None:
    target = shared_stack.api
    load = start_load(Balancer([target.base_url]), shared_stack.tokens, profile)
    await asyncio.sleep(profile.before_seconds)

    attack_at = time.monotonic()
    plan = Attack(SLOW_HEADS, SLOW_BODIES, BIG_HEAD_CLIENTS, BIG_HEAD_BYTES[profile.name])
    # In a process of its own: the attackers' CPU must not slow down the measuring client.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as attacker:
        slow, big = await asyncio.get_running_loop().run_in_executor(
            attacker, attack, target.port, plan, profile.fault_seconds
        )
    attack_until = time.monotonic()
    result = await load.finish(profile.after_seconds)

    latency = latency_verdict(result, attack_at, attack_until)
    report(
        Figures(
            "slow clients + oversized heads",
            result.sent,
            len(result.failed),
            0,
            0,
            0,
            None,
            None,
            f"{SLOW_HEADS} slow heads + {SLOW_BODIES} slow bodies "
            f"({slow.closed_by_server} closed by the server), "
            f"{big.connections} heads of {plan.big_head_bytes >> 20} MiB answered {dict(big.answers)}; "
            f"others: {latency.describe()}",
        )
    )

    assert slow.connections == SLOW_HEADS + SLOW_BODIES, "every slow client got connected"
    assert big.connections > 0
    assert result.failed == [] and leaky_5xx(result.outcomes) == []
    assert latency.within, latency.describe()

"""SLOs: each SLI against its environment's recorded objective, the error budget left, burn rates
per window and the 30-day burndown; one row per SLO, then the traffic the SLIs count."""

from __future__ import annotations

from kit.dashboards.model import SCOPE, Board, Panel, Row
from kit.promql import BUDGET_REMAINING, OBJECTIVE, SLI_ERROR_RATIO, SLI_REQUESTS, SLOS, number, window_name
from kit.slo import SloSpec

# Panel ids per SLO: (row, SLI stat, budget stat, SLI vs objective, burn rate, burndown).
PANEL_IDS = {
    "availability": (1, 2, 3, 4, 5, 13),
    "latency": (6, 7, 8, 9, 10, 14),
    "synthetic": (15, 16, 17, 18, 19, 20),
}
WHAT = {
    "availability": "share of SLO requests not answered 5xx",
    "latency": "share of non-5xx SLO requests faster than their class threshold",
    "synthetic": "share of time the synthetic probe's whole journey succeeds (the user's side)",
}
BURN_COLOURS = ("yellow", "orange", "red", "dark-red")


def slo_scope(spec: SloSpec, slo: str) -> str:
    # The synthetic SLI's series belong to the probe's job, which the $job variable does not list.
    if slo == "synthetic":
        return f'namespace=~"$namespace", job="{spec.selectors.synthetic_job}"'
    return SCOPE


def _slo_row(spec: SloSpec, slo: str) -> Row:
    row, sli_id, budget_id, vs_id, burn_id, burndown_id = PANEL_IDS[slo]
    scope = slo_scope(spec, slo)
    # The objective per namespace, recorded by the rules from alerts/slo.yaml (no number written in).
    objective = f'{OBJECTIVE}{{{scope}, slo="{slo}"}}'
    budget_left = f'{BUDGET_REMAINING}{{{scope}, slo="{slo}"}}'
    period = window_name(spec.period_seconds)
    windows = sorted(
        {w.long_seconds for w in spec.burn_rate_windows} | {w.short_seconds for w in spec.burn_rate_windows}
    )
    burn_rates = sorted({w.burn_rate for w in spec.burn_rate_windows})

    def sli(window: str) -> str:
        return f'{SLI_ERROR_RATIO.format(window=window)}{{{scope}, slo="{slo}"}}'

    return Row(
        row,
        f"{slo.capitalize()} SLO",
        [
            Panel(
                sli_id,
                f"slo-{slo}-sli",
                f"{slo.capitalize()} over {period}",
                f"""SLI over the SLO period ({WHAT[slo]}), and the namespace's objective as recorded by
                the rules (each environment has its own).""",
                "percentunit",
                [(f"1 - {sli(period)}", "SLI {{namespace}}"), (objective, "objective {{namespace}}")],
                kind="stat",
                width=6,
                thresholds=((None, "blue"),),
            ),
            Panel(
                budget_id,
                f"slo-{slo}-budget",
                "Error budget remaining",
                f"""Share of the {period} error budget still unspent, against the environment's own
                objective; below 0 the SLO is breached.""",
                "percentunit",
                [(budget_left, "{{namespace}}")],
                kind="stat",
                width=6,
                thresholds=((None, "red"), (0, "orange"), (0.25, "green")),
            ),
            Panel(
                vs_id,
                f"slo-{slo}-sli-vs-objective",
                "SLI (1h) vs objective",
                f"The {WHAT[slo]} over a sliding hour, and the recorded objective of the namespace.",
                "percentunit",
                [(f"1 - {sli('1h')}", "SLI {{namespace}}"), (objective, "objective {{namespace}}")],
                minimum=None,
            ),
            Panel(
                burn_id,
                f"slo-{slo}-burn-rate",
                "Burn rate per window",
                f"""Error ratio divided by the namespace's error budget (1 = spending exactly the
                budget over the period). Dashed lines: the alert burn rates
                {", ".join(number(r) for r in burn_rates)}; a page needs both windows of a pair above
                its line.""",
                "x",
                [
                    (
                        f"{sli(window_name(w))}\n/ on (namespace, job, slo)\n(1 - {objective})",
                        f"{window_name(w)} {{{{namespace}}}}",
                    )
                    for w in windows
                ],
                thresholds=((None, "green"), *zip(burn_rates, BURN_COLOURS, strict=False)),
            ),
            Panel(
                burndown_id,
                f"slo-{slo}-burndown",
                f"Error budget burndown ({period})",
                f"""Budget remaining over the last {period} (the rolling SLO period): a steady slope is
                normal spending, a cliff is an incident; at 0 the SLO is breached.""",
                "percentunit",
                [(budget_left, "{{namespace}}")],
                minimum=None,
                thresholds=((None, "red"), (0, "green")),
                time_from=period,
            ),
        ],
    )


def board(spec: SloSpec, environment: str) -> Board:
    objectives = spec.objectives(environment)
    traffic = Row(
        11,
        "Traffic in the SLO",
        [
            Panel(
                12,
                "slo-requests",
                "SLO request rate",
                """Requests per second counted by the SLIs (health probes excluded). Below the dashed
                low-traffic guard the burn-rate alerts stay silent.""",
                "reqps",
                [(f"{SLI_REQUESTS.format(window='5m')}{{{SCOPE}}}", "{{namespace}}")],
                width=24,
                thresholds=((None, "orange"), (objectives.low_traffic_min_rps, "green")),
            ),
        ],
    )
    return Board(
        f"{spec.service.name}-slo",
        f"{spec.service.name} / SLOs",
        """SLIs against each environment's objectives (recorded from alerts/slo.yaml), error budget,
        burn rates and the budget burndown.""",
        [*(_slo_row(spec, slo) for slo in SLOS), traffic],
        time_from="now-7d",
    )

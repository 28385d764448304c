"""testsupport/promtool.py, which the service's /metrics tests share: it passes a valid exposition
with the contracted names and fails, naming the cause, on a malformed one or a missing name."""

from __future__ import annotations

import pytest

from testsupport.promtool import CONTRACTED_METRICS, check_metrics


def _exposition(names: set[str]) -> str:
    """One sample of each name, typed as promtool expects (counters, histograms, gauges)."""
    lines = []
    for name in sorted(names):
        if name.endswith("_total"):
            family, kind, sample = name, "counter", f"{name} 3"
        elif name.endswith("_bucket"):
            family = name.removesuffix("_bucket")
            lines += [f"# HELP {family} Seconds.", f"# TYPE {family} histogram"]
            lines += [f'{name}{{le="+Inf"}} 2', f"{family}_sum 0.5", f"{family}_count 2"]
            continue
        else:
            family, kind, sample = name, "gauge", f"{name} 1"
        lines += [f"# HELP {family} A metric the rules read.", f"# TYPE {family} {kind}", sample]
    return "\n".join(lines) + "\n"


def test_a_valid_exposition_with_every_contracted_name_passes() -> None:
    found = check_metrics(_exposition(set(CONTRACTED_METRICS)))
    assert found["service_build_info"] == [({}, 1.0)]


def test_a_missing_contracted_name_is_named() -> None:
    with pytest.raises(AssertionError, match=r"the exposition lacks \['service_build_info'\]"):
        check_metrics(_exposition(set(CONTRACTED_METRICS) - {"service_build_info"}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("service_build_info 1", "service_build_info one"), 'expected float as value, got "one"'),
        (("# HELP service_build_info A metric the rules read.\n", ""), "service_build_info no help text"),
    ],
    ids=["not a number", "no help text"],
)
def test_an_exposition_promtool_refuses_fails_with_its_words(change: tuple[str, str], message: str) -> None:
    broken = _exposition(set(CONTRACTED_METRICS)).replace(*change)
    with pytest.raises(AssertionError, match=message):
        check_metrics(broken)

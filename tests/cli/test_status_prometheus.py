"""`kit status` against the real Prometheus (and Alertmanager) with crafted series.

Prometheus scrapes a static exposition that carries the SLO recording rules' series (burn in
staging, none in prod) and the Pushgateway the real `kit smoke` pushed to. It evaluates the
generated page alert (AvailabilityBudgetBurn, `for` cut to 0s) and sends it to Alertmanager.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import yaml

from kit import slo
from kit.paths import ALERTS
from tests.cli.conftest import Result, RunningService, StandIn
from tests.cli.servers import alertmanager, exposition, pushgateway
from testsupport.servers import prometheus_server, wait_until

pytestmark = pytest.mark.slow

SPEC = slo.load()
JOB = SPEC.selectors.api_job
STAGING, PROD = "reference-service-staging", "reference-service-prod"
PAGE_ALERT = f"{SPEC.service.alert_prefix}AvailabilityBudgetBurn"
BURN = 20.0  # staging's availability burn over 1h and 5m: above the 14.4x page threshold
CALM = 0.2


def _windows() -> list[int]:
    return sorted({s for w in SPEC.burn_rate_windows for s in (w.long_seconds, w.short_seconds)})


def crafted_series() -> str:
    lines = []
    for namespace in (STAGING, PROD):
        objectives = SPEC.objectives(namespace.rsplit("-", 1)[1])
        budgets = {
            "availability": objectives.availability_error_budget,
            "latency": objectives.latency_error_budget,
        }
        for seconds in _windows():
            window = slo.format_duration(seconds)
            for name, budget in budgets.items():
                burning = namespace == STAGING and name == "availability" and window in ("1h", "5m")
                ratio = budget * (BURN if burning else CALM)
                labels = f'namespace="{namespace}",job="{JOB}",slo="{name}"'
                lines.append(f"slo:sli_error:ratio_rate{window}{{{labels}}} {ratio}")
            lines.append(f'slo:sli_requests:rate{window}{{namespace="{namespace}",job="{JOB}"}} 25')
    return "\n".join(lines) + "\n"


def page_rule() -> dict[str, object]:
    """Staging's generated 1h/5m page alert (its rules see only its namespace, where the crafted
    series burn), unchanged but for `for` (0s: fire on the first evaluation)."""
    rules = yaml.safe_load((ALERTS / "generated" / "rules-staging.yaml").read_text())
    rule = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == PAGE_ALERT)
    return {"groups": [{"name": "kit-status-test", "rules": [{**rule, "for": "0s"}]}]}


@dataclass(frozen=True)
class Monitoring:
    prometheus: str
    alertmanager: str


@pytest.fixture(scope="module")
def monitoring(running_service: RunningService) -> Iterator[Monitoring]:
    from kit.cli import main

    with pushgateway() as gateway, alertmanager() as am, exposition(crafted_series()) as crafted:
        for namespace, env in ((STAGING, "staging"), (PROD, "prod")):
            code = main(running_service.pushed_journey_argv(gateway, namespace, env))
            assert code == 0
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yaml"],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am.removeprefix("http://")]}]}]},
            "scrape_configs": [
                {"job_name": "crafted", "honor_labels": True, "static_configs": [{"targets": [crafted]}]},
                {
                    "job_name": "pushgateway",
                    "honor_labels": True,
                    "static_configs": [{"targets": [gateway.removeprefix("http://")]}],
                },
            ],
        }
        with prometheus_server(yaml.safe_dump(config), {"rules.yaml": yaml.safe_dump(page_rule())}) as prom:

            def ready() -> bool:
                firing = httpx.get(f"{am}/api/v2/alerts").json()
                synthetic = httpx.get(
                    f"{prom.url}/api/v1/query", params={"query": "synthetic_journey_success"}
                ).json()
                return bool(firing) and len(synthetic["data"]["result"]) == 2

            wait_until(ready, 60, "the page alert in Alertmanager and the probe's series in Prometheus")
            yield Monitoring(prom.url, am)


def _status(kit: Callable[..., Result], api: StandIn, env: str, *extra: str) -> tuple[Result, dict]:
    result = kit("status", "--env", env, "--json", *api.args(), *extra)
    return result, json.loads(result.out)


def test_burning_budget_and_the_page_alert_make_staging_unhealthy(
    kit: Callable[..., Result],
    standin: Callable[..., StandIn],
    running_service: RunningService,
    monitoring: Monitoring,
) -> None:
    api = standin("staging", "healthy", service_backend=running_service.base_url)
    result, report = _status(kit, api, "staging", "--prometheus-url", monitoring.prometheus)
    assert result.code == 1, result.err
    assert report["verdict"] == "unhealthy"
    page = next(b for b in report["burn_rates"] if b["slo"] == "availability" and b["windows"] == "1h/5m")
    assert page["burning"] is True and page["severity"] == "critical" and page["threshold"] == 14.4
    assert page["burn_long"] == pytest.approx(BURN) and page["burn_short"] == pytest.approx(BURN)
    assert [b for b in report["burn_rates"] if b["burning"]] == [page]
    others = [b for b in report["burn_rates"] if b is not page]
    assert len(others) == 2 * len(SPEC.burn_rate_windows) - 1
    assert all(b["burn_long"] == pytest.approx(CALM) == b["burn_short"] for b in others)
    assert report["alerts_source"] == "prometheus"
    assert [(a["alertname"], a["severity"]) for a in report["alerts"]] == [(PAGE_ALERT, "critical")]
    assert report["alerts"][0]["runbook_url"].endswith(f"runbooks/{PAGE_ALERT}.md")
    assert report["synthetic"]["success"] is True and report["synthetic"]["last_run_age_seconds"] < 300
    assert f"alert {PAGE_ALERT} firing" in [f["message"] for f in report["findings"]]


def test_alerts_come_from_alertmanager_when_given(
    kit: Callable[..., Result],
    standin: Callable[..., StandIn],
    running_service: RunningService,
    monitoring: Monitoring,
) -> None:
    api = standin("staging", "healthy", service_backend=running_service.base_url)
    result, report = _status(
        kit,
        api,
        "staging",
        "--prometheus-url",
        monitoring.prometheus,
        "--alertmanager-url",
        monitoring.alertmanager,
    )
    assert result.code == 1
    assert report["alerts_source"] == "alertmanager"
    assert [(a["alertname"], a["severity"]) for a in report["alerts"]] == [(PAGE_ALERT, "critical")]


def test_prod_with_calm_budgets_and_a_passing_probe_is_healthy(
    kit: Callable[..., Result],
    standin: Callable[..., StandIn],
    running_service: RunningService,
    monitoring: Monitoring,
) -> None:
    api = standin("prod", "healthy", service_backend=running_service.base_url)
    result = kit("status", "--env", "prod", *api.args(), "--prometheus-url", monitoring.prometheus)
    assert result.code == 0, result.out + result.err
    assert "synthetic journey: passing (last run" in result.out
    assert "firing alerts (prometheus): none" in result.out
    assert "SLO burn rates" in result.out
    assert result.out.rstrip().endswith("verdict: healthy")

"""promtool, on the committed dev and preview rule files: each environment's rules see only its
own namespaces, dev alerts on dev's objectives, and a preview's outage never reaches critical.

The test files are written at run time from config/environments.yaml (a preview namespace is
the template instantiated for pull request 123), so they follow a renamed namespace.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from kit import alerts_gen, environments, slo

SPEC = slo.load()
ENVS = environments.load()
DEV = ENVS.get("dev").namespace
PROD = ENVS.get("prod").namespace
PREVIEW = ENVS.get("preview").for_pull_request(123).namespace
KSM = 'job="kube-state-metrics"'


def _run(tmp_path: Path, environment: str, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    rules = alerts_gen.rules_file(SPEC, environment)
    document = yaml.safe_load(rules.read_text())
    suite = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "group_eval_order": [group["name"] for group in document["groups"]],
        "tests": tests,
    }
    path = tmp_path / f"{environment}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, check=False, timeout=120
    )


def _no_replicas(namespace: str) -> list[dict[str, str]]:
    deployment = f'{KSM}, namespace="{namespace}", deployment="reference-service-api"'
    return [
        {"series": f"kube_deployment_spec_replicas{{{deployment}}}", "values": "1x20"},
        {"series": f"kube_deployment_status_replicas_available{{{deployment}}}", "values": "0x20"},
    ]


def _three_percent_errors(namespace: str) -> list[dict[str, str]]:
    """API requests in ``namespace``: 970 a minute answered 200, 30 answered 500, for 90 minutes."""
    return [
        {
            "series": (
                f'http_requests_total{{job="reference-service", namespace="{namespace}", method="GET", '
                f'route="/api/v1/projects", status="{status}"}}'
            ),
            "values": f"0+{rate}x90",
        }
        for status, rate in (("200", 970), ("500", 30))
    ]


def _firing(alertname: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"alertname": alertname, "exp_labels": labels}


def test_dev_rules_see_dev_only_and_use_dev_objectives(tmp_path: Path) -> None:
    name = f"{SPEC.service.alert_prefix}ApiNoAvailableReplicas"
    # 3 % of dev's requests fail: prod's rules would page (14.4 x 0.1 % = 1.44 %), dev's 99 %
    # objective puts the page at 14.4 x 1 % = 14.4 %.
    requests = _three_percent_errors(DEV)
    dev_outage = {
        "exp_labels": {
            "severity": "critical",
            "service": SPEC.service.name,
            "environment": "dev",
            "namespace": DEV,
            "deployment": "reference-service-api",
        },
        "exp_annotations": {
            "summary": "The API has no available replica: every request fails at the edge.",
            "description": (
                f"Deployment {DEV}/reference-service-api has had no available (ready) replica for 2 "
                "minutes: "
                "its Service has no endpoints and the edge answers every /api request itself, which the "
                "app's own SLIs cannot see. Readiness fails on the database or on start-up; see the pods' "
                "readiness body."
            ),
            "runbook_url": f"{SPEC.service.runbook_base_url}/{name}.md",
            "dashboard_url": (
                f"{SPEC.service.grafana_base_url}/d/reference-service-saturation"
                f"?viewPanel=3&var-namespace={DEV}"
            ),
        },
    }
    tests = [
        {
            "name": "prod's outage is not dev's business; dev's own outage is, judged on dev's objectives",
            "interval": "1m",
            "input_series": _no_replicas(PROD) + _no_replicas(DEV) + requests,
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": name, "exp_alerts": [dev_outage]},
                {
                    "eval_time": "80m",
                    "alertname": f"{SPEC.service.alert_prefix}AvailabilityBudgetBurn",
                    "exp_alerts": [],
                },
            ],
        }
    ]
    result = _run(tmp_path, "dev", tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_same_errors_page_with_prod_rules(tmp_path: Path) -> None:
    """The dev test above is not vacuous: prod's rules on prod's namespace page at 3 %."""
    series = _three_percent_errors(PROD)
    tests = [
        {
            "name": "3 % errors in prod",
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {
                    "expr": f'count(ALERTS{{alertname="{SPEC.service.alert_prefix}AvailabilityBudgetBurn", '
                    'alertstate="firing", severity="critical"})',
                    "eval_time": "80m",
                    "exp_samples": [{"labels": "{}", "value": 2}],
                }
            ],
        }
    ]
    result = _run(tmp_path, "prod", tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_crash_looping_preview_never_pages(tmp_path: Path) -> None:
    absent = f"{SPEC.service.alert_prefix}ApiAbsent"
    tests = [
        {
            "name": "a preview whose API is down raises a warning for its own namespace only",
            "interval": "1m",
            "input_series": [
                {
                    "series": f'up{{job="reference-service", namespace="{PREVIEW}", instance="a:8000"}}',
                    "values": "0x20",
                },
                {
                    "series": f'up{{job="reference-service", namespace="{DEV}", instance="b:8000"}}',
                    "values": "0x20",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": absent,
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "service": SPEC.service.name,
                                "environment": "preview",
                                "namespace": PREVIEW,
                                "job": "reference-service",
                            },
                            "exp_annotations": {
                                "summary": (
                                    "No API target is up: the service is down or invisible to monitoring."
                                ),
                                "description": (
                                    f"Prometheus has had no healthy reference-service target in {PREVIEW} "
                                    "for 5 minutes. The SLO alerts are blind while this fires: treat it as "
                                    "an outage until shown otherwise."
                                ),
                                "runbook_url": f"{SPEC.service.runbook_base_url}/{absent}.md",
                                "dashboard_url": (
                                    f"{SPEC.service.grafana_base_url}/d/reference-service-saturation"
                                    f"?viewPanel=2&var-namespace={PREVIEW}"
                                ),
                            },
                        }
                    ],
                },
            ],
        }
    ]
    result = _run(tmp_path, "preview", tests)
    assert result.returncode == 0, result.stdout + result.stderr

"""The pods the kit puts in a namespace pass restricted Pod Security and their NetworkPolicies.

`kit db-shell` (its manifest; the interactive `kubectl exec` needs a real cluster) and the
synthetic probe CronJob as the overlays render it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kit import k8s_checks
from kit.cli import known_command
from tests.cli.conftest import Result
from tests.cli.kube_standin import rendered

Obj = dict[str, Any]
PROBE = "reference-service-synthetic-probe"


def _selecting(objects: list[Obj], labels: dict[str, str]) -> list[Obj]:
    return [
        p
        for p in k8s_checks.of_kind(objects, "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels")
        and all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())
    ]


@pytest.mark.parametrize("write", [False, True])
def test_db_shell_pod_reaches_only_dns_and_postgres(kit: Callable[..., Result], write: bool) -> None:
    args = ["db-shell", "--env", "staging", "--print", "--json"] + (["--write"] if write else [])
    result = kit(*args)
    assert result.code == 0, result.err
    pod = json.loads(result.out)
    assert pod["metadata"]["namespace"] == "reference-service-staging"
    owner = {
        "kind": "Job",
        "metadata": {"name": "db-shell"},
        "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}},
    }
    template = k8s_checks.pod_templates([owner])[0]
    assert k8s_checks.writable_tmp_violations(template) == []  # pod security: test_k8s_checkov.py
    env = {v["name"]: v for v in pod["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "reference-service-secrets",
        "key": "DATABASE_URL",
    }
    assert ("PGOPTIONS" in env) is not write  # read-only transactions unless --write
    policies = _selecting(rendered("staging"), pod["metadata"]["labels"])
    assert [p["metadata"]["name"] for p in policies] == ["reference-service-kit-ops"]
    assert {port["port"] for rule in policies[0]["spec"]["egress"] for port in rule["ports"]} == {53, 5432}
    # No Service selects it (it would get traffic), no PDB counts it.
    for kind in ("Service", "PodDisruptionBudget"):
        for obj in k8s_checks.of_kind(rendered("staging"), kind):
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items())


def test_db_shell_recipe_for_humans(kit: Callable[..., Result]) -> None:
    result = kit("db-shell", "--env", "prod", "--print", "--context", "prod-eu")
    assert result.code == 0
    assert "kind: Pod" in result.out
    assert "# kubectl --context prod-eu -n reference-service-prod exec -it kit-db-shell-" in result.out


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_probe_cronjob_runs_kit_smoke_with_its_own_networkpolicy(env: str) -> None:
    objects = rendered(env)
    cronjob = k8s_checks.find(objects, "CronJob", PROBE)
    assert cronjob is not None
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    template = k8s_checks.pod_templates([cronjob])[0]
    assert k8s_checks.writable_tmp_violations(template) == []  # pod security: test_k8s_checkov.py
    container = template.spec["containers"][0]
    api = k8s_checks.find(objects, "Deployment", "reference-service-api")
    assert api is not None
    assert container["image"] == api["spec"]["template"]["spec"]["containers"][0]["image"]  # same image
    assert known_command(container["command"])  # the CLI in the image parses it
    env_vars = {v["name"]: v for v in container["env"]}
    assert set(env_vars) == {
        "KIT_SMOKE_HOST_HEADER",
        "KIT_ENVIRONMENT",
        "KIT_NAMESPACE",
        "KIT_PUSHGATEWAY_URL",
        "KIT_SMOKE_EMAIL",
        "KIT_SMOKE_PASSWORD",
    }
    assert env_vars["KIT_PUSHGATEWAY_URL"]["value"] == "http://prometheus-pushgateway.monitoring.svc:9091"
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    assert (
        env_vars["KIT_SMOKE_HOST_HEADER"]["valueFrom"]["configMapKeyRef"]["name"]
        == config["metadata"]["name"]
    )
    assert config["data"]["ENVIRONMENT"] == env
    # Egress: DNS, the API pods' port, the Pushgateway; nothing else. The API admits the probe.
    policies = _selecting(objects, template.labels)
    assert [p["metadata"]["name"] for p in policies] == [PROBE]
    egress = {
        (json.dumps(rule["to"][0].get("podSelector", {}), sort_keys=True), port["port"])
        for rule in policies[0]["spec"]["egress"]
        for port in rule["ports"]
    }
    assert {port for _, port in egress} == {53, 8000, 9091}
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    assert api["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8000
    admitting = [
        p
        for p in _selecting(objects, api_labels)
        for rule in p["spec"].get("ingress", [])
        for peer in rule["from"]
        if all(
            template.labels.get(k) == v
            for k, v in peer.get("podSelector", {}).get("matchLabels", {"x": "y"}).items()
        )
    ]
    assert [p["metadata"]["name"] for p in admitting] == ["reference-service-api-from-synthetic-probe"]


def test_no_probe_in_previews_but_the_kit_ops_policy_is_there() -> None:
    objects = rendered("preview")
    assert k8s_checks.find(objects, "CronJob", PROBE) is None
    assert k8s_checks.find(objects, "NetworkPolicy", "reference-service-kit-ops") is not None

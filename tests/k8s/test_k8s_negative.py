"""Deliberately broken copies of k8s/ make the checks fail, each with a message that says why.

Pod security, resources, image tags and probes are checkov's: their breakages are in
test_k8s_checkov.py, with the finding checkov prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kit import k8s_checks
from tests.k8s.support import expectations

API = "base/api/deployment.yaml"
WORKER = "base/worker/deployment.yaml"
PROD = "overlays/prod/kustomization.yaml"
RELEASE = "overlays/prod/release.yaml"
ROUTE = "base/api/httproute.yaml"
POLICIES = "base/networkpolicies.yaml"

# (what is broken, file under k8s/, exact text, replacement, message the checks must print)
BREAKAGES = [
    (
        "image without the overlay's registry",
        RELEASE,
        "newName: ghcr.io/example/reference-service",
        "newName: docker.io/someone/reference-service",
        "is not from ghcr.io/example/reference-service",
    ),
    (
        "no startup probe",
        API,
        "          startupProbe:\n",
        "          startupProbe_removed:\n",
        "container 'api': startupProbe is missing",
    ),
    (
        "read-only root filesystem with nowhere to write",
        API,
        "              mountPath: /tmp\n",
        "              mountPath: /scratch\n",
        "initContainer 'migrate': needs an emptyDir mounted at /tmp",
    ),
    (
        "grace period shorter than the drain",
        API,
        "terminationGracePeriodSeconds: 35",
        "terminationGracePeriodSeconds: 25",
        "preStop 5s + shutdown delay 0s + drain 20s + margin 5s = 30s "
        "must be < terminationGracePeriodSeconds 25",
    ),
    (
        "drain timeout not set explicitly",
        "base/config.env",
        "DRAIN_TIMEOUT_SECONDS=20\n",
        "",
        "DRAIN_TIMEOUT_SECONDS is not set explicitly in its ConfigMap",
    ),
    (
        "in-app shutdown delay that overruns the grace period",
        "base/config.env",
        "SHUTDOWN_DELAY_SECONDS=0\n",
        "SHUTDOWN_DELAY_SECONDS=15\n",
        "preStop 5s + shutdown delay 15s + drain 20s + margin 5s = 45s "
        "must be < terminationGracePeriodSeconds 35",
    ),
    (
        "rollout may drop capacity",
        API,
        "      maxUnavailable: 0\n",
        "      maxUnavailable: 1\n",
        "strategy must be RollingUpdate with maxUnavailable 0",
    ),
    (
        "replicas fighting the HPA",
        PROD,
        "replicas:\n- name: reference-service-worker\n",
        "replicas:\n- name: reference-service-api\n  count: 3\n- name: reference-service-worker\n",
        "has spec.replicas although HorizontalPodAutoscaler/reference-service-api owns the replica count",
    ),
    (
        "no PodDisruptionBudget",
        "base/kustomization.yaml",
        "  - api/pdb.yaml\n",
        "",
        "Deployment/reference-service-api: needs exactly one PodDisruptionBudget, has 0",
    ),
    (
        "no default deny",
        "base/networkpolicies.yaml",
        "  name: default-deny-all\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
        "  name: default-deny-all\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n",
        "no default-deny NetworkPolicy",
    ),
    (
        "egress to an unexpected port",
        "base/networkpolicies.yaml",
        "        - {port: 443, protocol: TCP}\n",
        "        - {port: 22, protocol: TCP}\n",
        "egress to ports ['22'] is not allowed",
    ),
    (
        "secret value committed",
        "base/kustomization.yaml",
        "configMapGenerator:\n",
        "secretGenerator:\n  - name: reference-service-secrets\n    literals: [JWT_SECRET=oops]\n"
        "configMapGenerator:\n",
        "overlay renders a Secret",
    ),
    (
        "ServiceMonitor on a port the Service lacks",
        "base/monitoring/servicemonitors.yaml",
        "    - port: http\n",
        "    - port: web\n",
        "endpoint port 'web' is not a port of the Service",
    ),
    (
        "PrometheusRule with an unknown field",
        "components/alerting/prod/prometheusrule.yaml",
        "    rules:\n",
        "    rulez: []\n    rules:\n",
        "unknown fields ['rulez']",
    ),
    (
        "HTTPRoute backend on a port the Service lacks",
        ROUTE,
        "          port: 80\n",
        "          port: 8080\n",
        "HTTPRoute/reference-service: backend reference-service:8080 is not a Service port",
    ),
    (
        "HTTPRoute that also routes /health",
        ROUTE,
        "value: /api}",
        "value: /}",
        "a rule must match only PathPrefix /api",
    ),
    (
        "HTTPRoute attached to another Gateway",
        PROD,
        "        name: platform\n        sectionName: prod\n",
        "        name: someone-elses\n        sectionName: prod\n",
        "must be the shared Gateway ('gateway-system', 'platform')",
    ),
    (
        "NetworkPolicy that no longer admits the Gateway's proxies",
        PROD,
        "gateway.envoyproxy.io/owning-gateway-name: platform",
        "gateway.envoyproxy.io/owning-gateway-name: other",
        "no NetworkPolicy admits the Gateway's proxies",
    ),
    (
        "OTLP egress to an address range instead of the collector",
        POLICIES,
        "        - {port: 443, protocol: TCP}\n",
        "        - {port: 4317, protocol: TCP}\n",
        "egress to ports ['4317'] is not allowed",
    ),
    (
        "hostname spread that strands pods",
        API,
        "          topologyKey: kubernetes.io/hostname\n          whenUnsatisfiable: ScheduleAnyway\n",
        "          topologyKey: kubernetes.io/hostname\n          whenUnsatisfiable: DoNotSchedule\n",
        "spread over kubernetes.io/hostname must be ScheduleAnyway",
    ),
    (
        "tainted nodes counted as spread domains",
        WORKER,
        "          nodeTaintsPolicy: Honor\n",
        "          nodeTaintsPolicy: Ignore\n",
        "needs nodeTaintsPolicy: Honor",
    ),
    (
        "prod zone spread only best effort",
        PROD,
        "      value: DoNotSchedule\n",
        "      value: ScheduleAnyway\n",
        "must be DoNotSchedule with minDomains >= 3",
    ),
    (
        "no minReadySeconds",
        API,
        "  minReadySeconds: 5\n",
        "",
        "minReadySeconds must be set",
    ),
    (
        "liveness probe that restarts a busy event loop",
        API,
        "            timeoutSeconds: 5\n            failureThreshold: 6\n",
        "            timeoutSeconds: 2\n            failureThreshold: 3\n",
        "livenessProbe would restart a busy event loop",
    ),
    (
        "a Secret change that does not roll the worker",
        WORKER,
        "    secret.reloader.stakater.com/reload: reference-service-secrets\n",
        "",
        "reads Secret ['reference-service-secrets'] but a change would not roll it",
    ),
    (
        "every proxy hop trusted",
        "overlays/prod/kustomization.yaml",
        "- FORWARDED_ALLOW_IPS=10.0.0.0/8\n",
        "- FORWARDED_ALLOW_IPS=*\n",
        "FORWARDED_ALLOW_IPS '*' trusts a client-written X-Forwarded-For",
    ),
    (
        "Pod Security Standard version not pinned",
        "base/namespace.yaml",
        "pod-security.kubernetes.io/enforce-version: v1.32",
        "pod-security.kubernetes.io/enforce-version: latest",
        "pod-security.kubernetes.io/enforce-version must be pinned (v1.<minor>), not 'latest'",
    ),
    (
        "namespace not restricted",
        "base/namespace.yaml",
        "pod-security.kubernetes.io/enforce: restricted",
        "pod-security.kubernetes.io/enforce: baseline",
        "pod-security.kubernetes.io/enforce must be restricted",
    ),
]


@pytest.mark.parametrize(
    ("broken", "file", "old", "new", "message"), BREAKAGES, ids=[b[0] for b in BREAKAGES]
)
def test_policy_catches(
    k8s_copy: Path,
    edit: Callable[[Path, str, str], None],
    broken: str,
    file: str,
    old: str,
    new: str,
    message: str,
) -> None:
    edit(k8s_copy / file, old, new)
    violations = k8s_checks.policy_violations(
        k8s_checks.render(k8s_copy / "overlays" / "prod"), expectations("prod")
    )
    assert any(message in violation for violation in violations), f"{broken}: got {violations}"


def test_schema_catches_an_unknown_field(k8s_copy: Path, edit: Callable[[Path, str, str], None]) -> None:
    edit(
        k8s_copy / API,
        "httpGet: {path: /health/live, port: http}",
        "httpGet: {paht: /health/live, port: http}",
    )
    objects = k8s_checks.render(k8s_copy / "overlays" / "prod")
    for version in k8s_checks.SUPPORTED_VERSIONS:
        errors = k8s_checks.schema_errors(objects, version)
        assert errors, version
        assert "Deployment/reference-service-api" in errors[0]
        assert "'paht' was unexpected" in errors[0]


def test_schema_catches_a_wrong_type(k8s_copy: Path, edit: Callable[[Path, str, str], None]) -> None:
    edit(k8s_copy / API, "terminationGracePeriodSeconds: 35", 'terminationGracePeriodSeconds: "35s"')
    errors = k8s_checks.schema_errors(k8s_checks.render(k8s_copy / "overlays" / "prod"), "1.34.0")
    assert any("terminationGracePeriodSeconds" in error and "'35s'" in error for error in errors), errors


def test_schema_refuses_a_kind_it_cannot_check(k8s_copy: Path) -> None:
    """Only the two known CRDs may go without an OpenAPI schema (they are checked structurally)."""
    objects = k8s_checks.render(k8s_copy / "overlays" / "prod")
    objects.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert k8s_checks.schema_errors(objects, "1.34.0") == [
        "Widget/w: Couldn't find schema for kind Widget with api version example.com/v1 "
        "for kubernetes version 1.34"
    ]


def test_render_failure_is_reported(k8s_copy: Path, edit: Callable[[Path, str, str], None]) -> None:
    edit(k8s_copy / "base/kustomization.yaml", "  - api/pdb.yaml\n", "  - api/missing.yaml\n")
    with pytest.raises(k8s_checks.RenderError, match=r"kubectl kustomize .* failed: .*missing\.yaml"):
        k8s_checks.render(k8s_copy / "overlays" / "prod")

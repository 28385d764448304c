"""The shared edge: Envoy Gateway's Gateway, cert-manager certificates, and every overlay's route.

No cluster here: built-in kinds are checked by kubernetes-validate, the Gateway API and
cert-manager kinds by the offline models in kit/k8s_crds.py, and the wiring between the
platform and the overlays (listener, host, namespace, certificate, proxies) by kit/k8s_checks.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest

from kit import k8s_checks, k8s_crds, k8s_overlays
from kit.k8s_checks import Obj, find, of_kind
from kit.paths import K8S
from tests.k8s.support import CONFIG, EDGE, OVERLAYS

DIGEST = "sha256:" + "ab" * 32


def test_platform_holds_the_gateway_its_class_issuer_and_certificates(platform: list[Obj]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in platform)
    assert ("GatewayClass", EDGE.gateway_class) in kinds
    assert ("Gateway", EDGE.gateway_name) in kinds
    assert ("ClusterIssuer", EDGE.cluster_issuer) in kinds
    assert ("Namespace", EDGE.gateway_namespace) in kinds
    gateway = find(platform, "Gateway", EDGE.gateway_name)
    assert gateway is not None
    assert gateway["metadata"]["namespace"] == EDGE.gateway_namespace
    listeners = {lst["name"]: lst for lst in gateway["spec"]["listeners"]}
    # One HTTPS listener per environment, plus plain HTTP for the redirect only.
    assert set(listeners) == {"http", *OVERLAYS}
    assert listeners["preview"]["hostname"] == "*.preview.example.com"
    certificates = {c["spec"]["secretName"]: c["spec"]["dnsNames"] for c in of_kind(platform, "Certificate")}
    assert certificates["reference-service-preview-tls"] == ["*.preview.example.com"]
    assert len(certificates) == len(OVERLAYS)


@pytest.mark.parametrize("version", k8s_checks.SUPPORTED_VERSIONS)
def test_platform_matches_the_schemas(platform: list[Obj], version: str) -> None:
    assert k8s_checks.schema_errors(platform, version) == []
    assert k8s_checks.crd_errors(platform) == []


def test_platform_wiring(platform: list[Obj]) -> None:
    assert k8s_checks.gateway_violations(platform) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_attaches_to_its_listener(
    platform: list[Obj], rendered: dict[str, list[Obj]], overlay: str
) -> None:
    assert k8s_checks.attachment_violations(platform, rendered[overlay]) == []
    route = find(rendered[overlay], "HTTPRoute", "reference-service")
    assert route is not None
    assert route["spec"]["parentRefs"][0]["sectionName"] == overlay


def test_a_pull_requests_preview_attaches_to_the_wildcard(platform: list[Obj], k8s_copy: Path) -> None:
    k8s_overlays.render_preview(4321, k8s_copy, f"{CONFIG.image_repository}@{DIGEST}")
    objects = k8s_checks.render(k8s_copy / "overlays" / "preview")
    assert k8s_checks.attachment_violations(platform, objects) == []


def test_an_environment_cannot_claim_another_environments_listener(
    platform: list[Obj], rendered: dict[str, list[Obj]]
) -> None:
    staging = copy.deepcopy(rendered["staging"])
    route = find(staging, "HTTPRoute", "reference-service")
    assert route is not None
    route["spec"]["parentRefs"][0]["sectionName"] = "prod"
    assert k8s_checks.attachment_violations(platform, staging) == [
        "HTTPRoute/reference-service: host 'api.staging.example.com' is not covered by listener 'prod' "
        "('api.example.com')",
        "HTTPRoute/reference-service: listener 'prod' does not admit routes from namespace "
        "'reference-service-staging'",
    ]


def test_a_listener_without_a_matching_certificate_is_caught(platform: list[Obj]) -> None:
    broken = copy.deepcopy(platform)
    certificate = find(broken, "Certificate", "reference-service-preview-tls")
    assert certificate is not None
    certificate["spec"]["dnsNames"] = ["pr-1.preview.example.com"]
    assert k8s_checks.gateway_violations(broken) == [
        "Gateway/platform listener 'preview': Certificate 'reference-service-preview-tls' does not cover "
        "'*.preview.example.com' (dnsNames ['pr-1.preview.example.com'])"
    ]


def test_a_gateway_of_another_implementation_is_caught(platform: list[Obj]) -> None:
    broken = copy.deepcopy(platform)
    gateway_class = find(broken, "GatewayClass", EDGE.gateway_class)
    assert gateway_class is not None
    gateway_class["spec"]["controllerName"] = "k8s.io/ingress-nginx"
    assert any("must be Envoy Gateway's" in e for e in k8s_checks.gateway_violations(broken))


@pytest.mark.parametrize(
    ("kind", "mutate", "message"),
    [
        (
            "HTTPRoute",
            lambda o: o["spec"]["parentRefs"][0].update(bogus=1),
            "bogus: Extra inputs are not permitted",
        ),
        (
            "HTTPRoute",
            lambda o: o["spec"]["rules"][0]["backendRefs"][0].update(port="80"),
            "rules.0.backendRefs.0.port: Input should be a valid integer",
        ),
        (
            "HTTPRoute",
            lambda o: o["spec"].update(hostnames=["API.example.com"]),
            "hostnames.0: String should match pattern",
        ),
        (
            "Gateway",
            lambda o: o["spec"]["listeners"][1].update(protocol="HTTP3"),
            "listeners.1.protocol: Input should be 'HTTP', 'HTTPS', 'TLS', 'TCP' or 'UDP'",
        ),
        ("Certificate", lambda o: o["spec"].pop("issuerRef"), "spec.issuerRef: Field required"),
        (
            "Certificate",
            lambda o: o["spec"].update(renewBefore="30 days"),
            "spec.renewBefore: String should match pattern",
        ),
        (
            "ClusterIssuer",
            lambda o: o["spec"]["acme"]["solvers"][0]["dns01"].update(cloudflare={}),
            "cloudflare: Extra inputs are not permitted",
        ),
    ],
)
def test_custom_resource_schemas_catch(
    platform: list[Obj],
    rendered: dict[str, list[Obj]],
    kind: str,
    mutate: Callable[[Obj], object],
    message: str,
) -> None:
    """No silent pass for CRDs: each broken custom resource fails with the field's path."""
    source = rendered["prod"] if kind == "HTTPRoute" else platform
    obj = copy.deepcopy(next(o for o in source if o["kind"] == kind))
    mutate(obj)
    errors = k8s_crds.errors(obj)
    assert any(message in e for e in errors), errors
    assert any(message in e for e in k8s_checks.crd_errors([obj]))


def test_an_unknown_custom_resource_version_is_refused() -> None:
    obj = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute", "metadata": {"name": "r"}}
    assert k8s_crds.errors(obj) == ["HTTPRoute/r: no schema for gateway.networking.k8s.io/v1beta1 HTTPRoute"]


def test_a_quota_too_small_for_a_rolling_update_is_caught(rendered: dict[str, list[Obj]]) -> None:
    objects = copy.deepcopy(rendered["preview"])
    quota = find(objects, "ResourceQuota", "reference-service")
    assert quota is not None
    quota["spec"]["hard"]["limits.cpu"] = "500m"
    assert any(
        "ResourceQuota/reference-service: limits.cpu 500m is below what a rolling update needs" in e
        for e in k8s_checks.quota_violations(objects)
    )


def test_listeners_follow_the_configured_hosts(platform: list[Obj]) -> None:
    gateway = find(platform, "Gateway", EDGE.gateway_name)
    assert gateway is not None
    hostnames = {lst["name"]: lst.get("hostname") for lst in gateway["spec"]["listeners"]}
    for env in k8s_overlays.deployed(CONFIG):
        assert hostnames[env.name] == k8s_overlays.listener_hostname(env)


@pytest.mark.parametrize(
    ("template", "wildcard"),
    [("pr-{pr}.preview.example.com", "*.preview.example.com"), ("{pr}.pr.example.com", "*.pr.example.com")],
)
def test_the_preview_listener_is_the_wildcard_of_the_host_template(template: str, wildcard: str) -> None:
    preview = CONFIG.get("preview").model_copy(update={"host_template": template})
    assert k8s_overlays.listener_hostname(preview) == wildcard


@pytest.mark.parametrize("template", ["pr.{pr}.example.com", "pr-{pr}", "pr-{pr}.{pr}.example.com"])
def test_a_host_template_without_a_wildcard_form_is_refused(template: str) -> None:
    preview = CONFIG.get("preview").model_copy(update={"host_template": template})
    with pytest.raises(
        k8s_overlays.OverlayError, match=r"host_template must put \{pr\} in the first label only"
    ):
        k8s_overlays.listener_hostname(preview)


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number = duration.rstrip("smh")
    return float(number) * units[duration[len(number) :]]


def test_the_gateway_closes_idle_upstream_connections_before_the_api_does(platform: list[Obj]) -> None:
    """Otherwise a request sent on a connection the API is closing is lost (seen by make chaos)."""
    from app.settings import Settings

    policy = find(platform, "BackendTrafficPolicy", f"{EDGE.gateway_name}-upstream")
    assert policy is not None
    assert policy["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": EDGE.gateway_name}
    ]
    idle = _seconds(policy["spec"]["timeout"]["http"]["connectionIdleTimeout"])
    keep_alive = Settings(environment="test", jwt_secret="x" * 40).keep_alive_timeout_seconds
    for overlay in OVERLAYS:
        rendered = k8s_checks.render(K8S / "overlays" / overlay)
        for config_map in of_kind(rendered, "ConfigMap"):
            overridden = config_map["data"].get("KEEP_ALIVE_TIMEOUT_SECONDS", keep_alive)
            keep_alive = min(keep_alive, int(overridden))
    assert idle < keep_alive

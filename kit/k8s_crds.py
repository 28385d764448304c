"""Offline schemas for the custom resources the manifests use from Gateway API and cert-manager.

kubernetes-validate knows only built-in kinds, and no cluster is here to run the CRDs' own
validation, so the fields this kit writes are modelled with pydantic (unknown fields refused,
types, enums, patterns and bounds as the CRDs declare them: Gateway API v1 standard channel,
cert-manager v1, Envoy Gateway v1alpha1). A field the kit does not use is an error too: adding
one means extending its model here, with the CRD's rule. Every kind a manifest may hold is either built in, in
MODELS, or one of the Prometheus Operator kinds checked structurally in kit/k8s_checks.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# RFC 1123 names and the Gateway API's hostname rule (an optional leading "*." wildcard).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"
_HOSTNAME = rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*$"
_SECTION_NAME = rf"^{_DNS_LABEL}$"
_DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"

Name = Annotated[str, Field(min_length=1, max_length=253, pattern=_DNS_SUBDOMAIN)]
Hostname = Annotated[str, Field(min_length=1, max_length=253, pattern=_HOSTNAME)]
SectionName = Annotated[str, Field(min_length=1, max_length=253, pattern=_SECTION_NAME)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Metadata(Strict):
    name: Name
    namespace: Name | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        bad = [key for key in labels if not re.match(_LABEL_KEY, key)]
        if bad:
            raise ValueError(f"invalid label keys {bad}")
        return labels


# --- Gateway API (gateway.networking.k8s.io/v1) -----------------------------------------


class ParentReference(Strict):
    group: Literal["gateway.networking.k8s.io"] = "gateway.networking.k8s.io"
    kind: Literal["Gateway"] = "Gateway"
    namespace: Name | None = None
    name: Name
    sectionName: SectionName | None = None
    port: Port | None = None


class PathMatch(Strict):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: Annotated[str, Field(max_length=1024, pattern=r"^/")] = "/"


class RouteMatch(Strict):
    path: PathMatch | None = None


class BackendRef(Strict):
    group: Literal[""] = ""
    kind: Literal["Service"] = "Service"
    name: Name
    namespace: Name | None = None
    port: Port
    weight: Annotated[int, Field(ge=0, le=1000000)] = 1


class RequestRedirect(Strict):
    scheme: Literal["http", "https"] | None = None
    hostname: Hostname | None = None
    port: Port | None = None
    statusCode: Literal[301, 302, 303, 307, 308] = 302


class RouteFilter(Strict):
    type: Literal["RequestRedirect"]
    requestRedirect: RequestRedirect


class RouteTimeouts(Strict):
    request: Annotated[str, Field(pattern=_DURATION)] | None = None
    backendRequest: Annotated[str, Field(pattern=_DURATION)] | None = None


class RouteRule(Strict):
    matches: Annotated[list[RouteMatch], Field(max_length=64)] = []
    filters: Annotated[list[RouteFilter], Field(max_length=16)] = []
    backendRefs: Annotated[list[BackendRef], Field(max_length=16)] = []
    timeouts: RouteTimeouts | None = None


class HTTPRouteSpec(Strict):
    parentRefs: Annotated[list[ParentReference], Field(min_length=1, max_length=32)]
    hostnames: Annotated[list[Hostname], Field(max_length=16)] = []
    rules: Annotated[list[RouteRule], Field(min_length=1, max_length=16)]


class HTTPRoute(Strict):
    apiVersion: Literal["gateway.networking.k8s.io/v1"]
    kind: Literal["HTTPRoute"]
    metadata: Metadata
    spec: HTTPRouteSpec


class SecretObjectReference(Strict):
    group: Literal[""] = ""
    kind: Literal["Secret"] = "Secret"
    name: Name
    namespace: Name | None = None


class ListenerTLS(Strict):
    mode: Literal["Terminate", "Passthrough"] = "Terminate"
    certificateRefs: Annotated[list[SecretObjectReference], Field(max_length=64)] = []


class LabelSelectorRequirement(Strict):
    key: Annotated[str, Field(pattern=_LABEL_KEY)]
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = []


class LabelSelector(Strict):
    matchLabels: dict[str, str] = {}
    matchExpressions: list[LabelSelectorRequirement] = []


class RouteNamespaces(Strict):
    from_: Annotated[Literal["All", "Selector", "Same"], Field(alias="from")] = "Same"
    selector: LabelSelector | None = None


class RouteGroupKind(Strict):
    group: Literal["gateway.networking.k8s.io"] = "gateway.networking.k8s.io"
    kind: Literal["HTTPRoute", "GRPCRoute"]


class AllowedRoutes(Strict):
    namespaces: RouteNamespaces | None = None
    kinds: Annotated[list[RouteGroupKind], Field(max_length=8)] = []


class Listener(Strict):
    name: SectionName
    hostname: Hostname | None = None
    port: Port
    protocol: Literal["HTTP", "HTTPS", "TLS", "TCP", "UDP"]
    tls: ListenerTLS | None = None
    allowedRoutes: AllowedRoutes | None = None


class GatewaySpec(Strict):
    gatewayClassName: Name
    listeners: Annotated[list[Listener], Field(min_length=1, max_length=64)]


class Gateway(Strict):
    apiVersion: Literal["gateway.networking.k8s.io/v1"]
    kind: Literal["Gateway"]
    metadata: Metadata
    spec: GatewaySpec


class GatewayClassSpec(Strict):
    controllerName: Annotated[
        str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9.-]+/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
    ]
    description: Annotated[str, Field(max_length=64)] | None = None


class GatewayClass(Strict):
    apiVersion: Literal["gateway.networking.k8s.io/v1"]
    kind: Literal["GatewayClass"]
    metadata: Metadata
    spec: GatewayClassSpec


# --- cert-manager (cert-manager.io/v1) ---------------------------------------------------


class IssuerRef(Strict):
    group: Literal["cert-manager.io"] = "cert-manager.io"
    kind: Literal["Issuer", "ClusterIssuer"] = "Issuer"
    name: Name


class PrivateKey(Strict):
    algorithm: Literal["RSA", "ECDSA", "Ed25519"] = "RSA"
    size: int | None = None
    rotationPolicy: Literal["Never", "Always"] = "Always"
    encoding: Literal["PKCS1", "PKCS8"] | None = None


class CertificateSpec(Strict):
    secretName: Name
    dnsNames: Annotated[list[Hostname], Field(min_length=1)]
    issuerRef: IssuerRef
    privateKey: PrivateKey | None = None
    duration: Annotated[str, Field(pattern=_DURATION)] | None = None
    renewBefore: Annotated[str, Field(pattern=_DURATION)] | None = None


class Certificate(Strict):
    apiVersion: Literal["cert-manager.io/v1"]
    kind: Literal["Certificate"]
    metadata: Metadata
    spec: CertificateSpec


class SecretKeySelector(Strict):
    name: Name
    key: str | None = None


class Route53(Strict):
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")] | None = None
    hostedZoneID: str | None = None
    role: str | None = None


class Dns01(Strict):
    route53: Route53


class AcmeSolver(Strict):
    dns01: Dns01
    selector: dict[str, Any] | None = None


class Acme(Strict):
    server: Annotated[str, Field(pattern=r"^https://")]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    privateKeySecretRef: SecretKeySelector
    solvers: Annotated[list[AcmeSolver], Field(min_length=1)]


class IssuerSpec(Strict):
    acme: Acme


class ClusterIssuer(Strict):
    apiVersion: Literal["cert-manager.io/v1"]
    kind: Literal["ClusterIssuer"]
    metadata: Metadata
    spec: IssuerSpec


# --- Envoy Gateway (gateway.envoyproxy.io/v1alpha1) ----------------------------------------


class PolicyTargetRef(Strict):
    group: Literal["gateway.networking.k8s.io"]
    kind: Literal["Gateway", "HTTPRoute"]
    name: Name


class HttpTimeout(Strict):
    connectionIdleTimeout: Annotated[str, Field(pattern=_DURATION)] | None = None
    maxConnectionDuration: Annotated[str, Field(pattern=_DURATION)] | None = None
    requestTimeout: Annotated[str, Field(pattern=_DURATION)] | None = None


class Timeout(Strict):
    http: HttpTimeout


class BackendTrafficPolicySpec(Strict):
    targetRefs: Annotated[list[PolicyTargetRef], Field(min_length=1, max_length=16)]
    timeout: Timeout


class BackendTrafficPolicy(Strict):
    apiVersion: Literal["gateway.envoyproxy.io/v1alpha1"]
    kind: Literal["BackendTrafficPolicy"]
    metadata: Metadata
    spec: BackendTrafficPolicySpec


MODELS: dict[tuple[str, str], type[Strict]] = {
    ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy"): BackendTrafficPolicy,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTPRoute,
    ("gateway.networking.k8s.io/v1", "Gateway"): Gateway,
    ("gateway.networking.k8s.io/v1", "GatewayClass"): GatewayClass,
    ("cert-manager.io/v1", "Certificate"): Certificate,
    ("cert-manager.io/v1", "ClusterIssuer"): ClusterIssuer,
}
KINDS = {kind for _, kind in MODELS}


def errors(obj: dict[str, Any]) -> list[str]:
    """Readable violations of one custom resource ("HTTPRoute/x: spec.rules.0...: message")."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    model = MODELS.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if model is None:
        return [f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    try:
        model.model_validate(obj)
    except ValidationError as error:
        return [
            f"{where}: {'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()
        ]
    return []

"""Check rendered Kubernetes manifests the way a cluster (and a strict platform team) would.

There is no cluster here, so each function takes the objects `kubectl kustomize` renders and
returns a list of readable violations ("Deployment/reference-service-api: ..."); an empty
list means the check passed. tests/k8s runs them on every overlay, and on deliberately broken
copies to prove that each one fails when it should.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

# Kubernetes minor versions the manifests must validate against: the oldest we support (the
# preStop `sleep` action and matchLabelKeys need 1.30), kubectl's here, and the newest we test.
SUPPORTED_VERSIONS = ("1.30.0", "1.32.0", "1.34.0")

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
# Objects that belong to no single component of the service (namespace-wide).
NAMESPACE_WIDE = {("Namespace", None), ("ConfigMap", None), ("NetworkPolicy", "default-deny-all")}

SECRET_NAME = "reference-service-secrets"  # noqa: S105 - a name, not a value
SECRET_KEYS = {"DATABASE_URL", "REDIS_URL", "JWT_SECRET", "WEBHOOK_URL", "WEBHOOK_SIGNING_SECRET"}
# The synthetic probe's smoke account (k8s/components/synthetic-probe).
SECRET_KEYS |= {"SMOKE_EMAIL", "SMOKE_PASSWORD"}
# Egress the service may have: DNS, PostgreSQL, Redis, the webhook over HTTPS; the synthetic
# probe's: the API pods' port and the Pushgateway.
ALLOWED_EGRESS_PORTS = {53, 5432, 6379, 443, 8000, 9091}
# Seconds the app needs after its drain bound to close pools and flush logs (see api/deployment.yaml).
SHUTDOWN_MARGIN_SECONDS = 5
POD_SECURITY_MODES = ("enforce", "audit", "warn")
ALLOWED_VOLUME_TYPES = {"configMap", "emptyDir", "projected", "secret", "downwardAPI", "ephemeral"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Pods that run to completion: no probes, no drain arithmetic (nothing routes traffic to them).
RUN_TO_COMPLETION_KINDS = {"Job", "CronJob"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

Obj = dict[str, Any]


class RenderError(Exception):
    """kubectl kustomize refused the overlay (its stderr is the message)."""


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise RenderError("kubectl is not installed: it provides `kubectl kustomize` (see README)")
    return path


def render(overlay: Path) -> list[Obj]:
    """The objects `kubectl apply -k <overlay>` would send, in order."""
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {overlay} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def ref(obj: Obj) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj.get("kind") == kind]


def find(objects: list[Obj], kind: str, name: str) -> Obj | None:
    return next((obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name), None)


# --- schema -------------------------------------------------------------------------------


def schema_errors(objects: list[Obj], version: str) -> list[str]:
    """Validate against the official OpenAPI schema of `version`, unknown fields included.

    kubernetes-validate has no schema for CRDs and would only warn; those kinds are checked
    structurally by crd_errors instead, and any other kind without a schema is an error here.
    """
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "(root)"
            errors.append(f"{ref(obj)}: Kubernetes {version} schema: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            if obj.get("kind") not in CRD_KINDS:
                errors.append(f"{ref(obj)}: {error.message}")
    return errors


# --- custom resources (structure) -------------------------------------------------------

_RULE_GROUP_KEYS = {
    "name",
    "interval",
    "rules",
    "limit",
    "partial_response_strategy",
    "query_offset",
    "labels",
}
_RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
_ENDPOINT_KEYS = {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels", "relabelings"}


def crd_errors(objects: list[Obj]) -> list[str]:
    """ServiceMonitor and PrometheusRule shape, and that each ServiceMonitor finds its Service."""
    errors: list[str] = []
    services = of_kind(objects, "Service")
    for monitor in of_kind(objects, "ServiceMonitor"):
        where = ref(monitor)
        if monitor.get("apiVersion") != "monitoring.coreos.com/v1":
            errors.append(f"{where}: apiVersion must be monitoring.coreos.com/v1")
        spec = monitor.get("spec", {})
        unknown = set(spec) - {"selector", "endpoints", "namespaceSelector", "jobLabel"}
        if unknown:
            errors.append(f"{where}: unknown spec fields {sorted(unknown)}")
        wanted = spec.get("selector", {}).get("matchLabels", {})
        matches = [s for s in services if wanted and _selects(wanted, s["metadata"].get("labels", {}))]
        if not matches:
            errors.append(f"{where}: selector {wanted} matches no Service")
        endpoints = spec.get("endpoints") or []
        if not endpoints:
            errors.append(f"{where}: no endpoints")
        port_names = {p.get("name") for s in matches for p in s["spec"].get("ports", [])}
        for endpoint in endpoints:
            if set(endpoint) - _ENDPOINT_KEYS:
                errors.append(f"{where}: unknown endpoint fields {sorted(set(endpoint) - _ENDPOINT_KEYS)}")
            if endpoint.get("port") not in port_names:
                errors.append(f"{where}: endpoint port {endpoint.get('port')!r} is not a port of the Service")
            if endpoint.get("path") != "/metrics":
                errors.append(f"{where}: endpoint must scrape /metrics, not {endpoint.get('path')!r}")
    for service in services:
        labels = service["metadata"].get("labels", {})
        monitors = of_kind(objects, "ServiceMonitor")
        if not any(_selects(m["spec"]["selector"].get("matchLabels", {}), labels) for m in monitors):
            errors.append(f"{ref(service)}: no ServiceMonitor scrapes it")
    for rule in of_kind(objects, "PrometheusRule"):
        errors.extend(_prometheus_rule_errors(rule))
    return errors


def _prometheus_rule_errors(rule: Obj) -> list[str]:
    where = ref(rule)
    errors = []
    if rule.get("apiVersion") != "monitoring.coreos.com/v1":
        errors.append(f"{where}: apiVersion must be monitoring.coreos.com/v1")
    spec = rule.get("spec", {})
    if set(spec) != {"groups"}:
        errors.append(f"{where}: spec must hold exactly `groups`, has {sorted(spec)}")
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        return [*errors, f"{where}: spec.groups must be a non-empty list"]
    names = [g.get("name") for g in groups]
    if len(set(names)) != len(names):
        errors.append(f"{where}: duplicate group names {names}")
    for group in groups:
        gname = group.get("name")
        if set(group) - _RULE_GROUP_KEYS:
            errors.append(f"{where}: group {gname!r}: unknown fields {sorted(set(group) - _RULE_GROUP_KEYS)}")
        for rule_item in group.get("rules") or []:
            label = rule_item.get("alert") or rule_item.get("record")
            if set(rule_item) - _RULE_KEYS:
                errors.append(
                    f"{where}: rule {label!r}: unknown fields {sorted(set(rule_item) - _RULE_KEYS)}"
                )
            if ("alert" in rule_item) == ("record" in rule_item):
                errors.append(f"{where}: group {gname!r}: each rule needs exactly one of alert/record")
            if not isinstance(rule_item.get("expr"), str | int) or rule_item.get("expr") == "":
                errors.append(f"{where}: rule {label!r}: expr must be a non-empty string")
        if not group.get("rules"):
            errors.append(f"{where}: group {gname!r} has no rules")
    return errors


# --- policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodTemplate:
    owner: Obj
    spec: Obj
    labels: dict[str, str]

    @property
    def where(self) -> str:
        return ref(self.owner)

    def containers(self, include_init: bool = True) -> Iterator[tuple[str, Obj]]:
        if include_init:
            for container in self.spec.get("initContainers", []):
                yield "initContainer", container
        for container in self.spec.get("containers", []):
            yield "container", container


def pod_templates(objects: list[Obj]) -> list[PodTemplate]:
    templates = []
    for obj in objects:
        if obj.get("kind") in WORKLOAD_KINDS:
            template = obj["spec"]["template"]
            templates.append(
                PodTemplate(obj, template["spec"], template.get("metadata", {}).get("labels", {}))
            )
        elif obj.get("kind") == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
            templates.append(
                PodTemplate(obj, template["spec"], template.get("metadata", {}).get("labels", {}))
            )
    return templates


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


_QUANTITY = re.compile(r"^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(value: object) -> float:
    match = _QUANTITY.match(str(value))
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def pod_security_violations(template: PodTemplate) -> list[str]:
    """The `restricted` Pod Security Standard, plus read-only root filesystem."""
    where, spec = template.where, template.spec
    errors = []
    pod_sc = spec.get("securityContext", {})
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(forbidden):
            errors.append(f"{where}: {forbidden} is not allowed")
    if pod_sc.get("runAsNonRoot") is not True:
        errors.append(f"{where}: pod securityContext.runAsNonRoot must be true")
    for field in ("runAsUser", "runAsGroup"):
        value = pod_sc.get(field)
        if not isinstance(value, int) or value == 0:
            errors.append(
                f"{where}: pod securityContext.{field} must be a numeric non-root id, got {value!r}"
            )
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        errors.append(f"{where}: pod securityContext.seccompProfile.type must be RuntimeDefault")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            errors.append(f"{where}: volume {volume['name']!r} of type {sorted(kinds)} is not allowed")
    for role, container in template.containers():
        cwhere = f"{where} {role} {container['name']!r}"
        sc = container.get("securityContext", {})
        if sc.get("privileged"):
            errors.append(f"{cwhere}: privileged is not allowed")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{cwhere}: securityContext.allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{cwhere}: securityContext.readOnlyRootFilesystem must be true")
        if sc.get("runAsNonRoot") is not True:
            errors.append(f"{cwhere}: securityContext.runAsNonRoot must be true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            errors.append(f"{cwhere}: runs as root (runAsUser 0)")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            errors.append(f"{cwhere}: securityContext.seccompProfile.type must be RuntimeDefault")
        capabilities = sc.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            errors.append(f"{cwhere}: securityContext.capabilities.drop must contain ALL")
        if capabilities.get("add"):
            errors.append(f"{cwhere}: capabilities.add {capabilities['add']} is not allowed")
        if any("hostPort" in port for port in container.get("ports", [])):
            errors.append(f"{cwhere}: hostPort is not allowed")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        if mounts.get("/tmp") not in empty_dirs:  # noqa: S108 - a mount path in a pod spec
            errors.append(f"{cwhere}: needs an emptyDir mounted at /tmp (the root filesystem is read-only)")
    return errors


def container_violations(template: PodTemplate, objects: list[Obj], image_repository: str) -> list[str]:
    """Resources, pinned images, probes, service account, settings references."""
    where, spec = template.where, template.spec
    errors = []
    if spec.get("automountServiceAccountToken") is not False:
        errors.append(f"{where}: automountServiceAccountToken must be false")
    account = spec.get("serviceAccountName")
    if not account or account == "default":
        errors.append(f"{where}: needs its own serviceAccountName")
    elif find(objects, "ServiceAccount", account) is None:
        errors.append(f"{where}: ServiceAccount {account!r} is not part of the overlay")
    for role, container in template.containers():
        cwhere = f"{where} {role} {container['name']!r}"
        errors.extend(_resource_violations(cwhere, container.get("resources", {})))
        errors.extend(_image_violations(cwhere, container.get("image", ""), image_repository))
        errors.extend(_settings_violations(cwhere, container, objects))
    if template.owner.get("kind") not in RUN_TO_COMPLETION_KINDS:
        for _, container in template.containers(include_init=False):
            errors.extend(_probe_violations(f"{where} container {container['name']!r}", container))
    return errors


def _resource_violations(where: str, resources: Obj) -> list[str]:
    errors = []
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(section, {}):
                errors.append(f"{where}: resources.{section}.{resource} is missing")
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        if request is not None and limit is not None and quantity(request) > quantity(limit):
            errors.append(f"{where}: {resource} request {request} exceeds its limit {limit}")
    return errors


def image_tag(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    repository, tag = name, None
    if ":" in name.rsplit("/", 1)[-1]:
        repository, tag = name.rsplit(":", 1)
    return repository, tag, digest or None


def _image_violations(where: str, image: str, image_repository: str) -> list[str]:
    repository, tag, digest = image_tag(image)
    errors = []
    if repository != image_repository:
        errors.append(f"{where}: image {image!r} is not from {image_repository} (overlay `images:` missing?)")
    if tag in (None, "latest") and digest is None:
        errors.append(f"{where}: image {image!r} must be pinned to a version tag or digest, never latest")
    if tag == "latest":
        errors.append(f"{where}: image {image!r} uses the mutable tag `latest`")
    if digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        errors.append(f"{where}: image digest {digest!r} is not a sha256 digest")
    return errors


def _settings_violations(where: str, container: Obj, objects: list[Obj]) -> list[str]:
    errors = []
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            errors.append(f"{where}: envFrom secretRef exposes every key; reference secret keys one by one")
        name = source.get("configMapRef", {}).get("name")
        if name and find(objects, "ConfigMap", name) is None:
            errors.append(f"{where}: ConfigMap {name!r} is not part of the overlay")
    for variable in container.get("env", []):
        if variable.get("name") in SECRET_KEYS and "valueFrom" not in variable:
            errors.append(f"{where}: {variable['name']} must come from Secret {SECRET_NAME}, not a literal")
        secret = variable.get("valueFrom", {}).get("secretKeyRef")
        if secret and (secret.get("name") != SECRET_NAME or secret.get("key") not in SECRET_KEYS):
            errors.append(f"{where}: unexpected secret reference {secret}")
    return errors


def _probe_violations(where: str, container: Obj) -> list[str]:
    errors = []
    port_names = {p.get("name") for p in container.get("ports", [])}
    serves_http = "http" in port_names
    required = ["startupProbe", "livenessProbe", "readinessProbe"]
    for probe_name in required:
        probe = container.get(probe_name)
        if probe is None:
            errors.append(f"{where}: {probe_name} is missing")
            continue
        port = probe.get("httpGet", {}).get("port")
        if isinstance(port, str) and port not in port_names:
            errors.append(f"{where}: {probe_name} uses port {port!r}, which the container does not declare")
    if serves_http:
        expected = {"livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
        for probe_name, path in expected.items():
            actual = container.get(probe_name, {}).get("httpGet", {}).get("path")
            if probe_name in container and actual != path:
                errors.append(f"{where}: {probe_name} must check {path}, not {actual!r}")
        if "preStop" not in container.get("lifecycle", {}):
            errors.append(f"{where}: serves traffic but has no preStop hook to leave the endpoints first")
    return errors


def label_violations(objects: list[Obj], expected_version: str) -> list[str]:
    errors = []
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        wide = (obj["kind"], None) in NAMESPACE_WIDE or (
            obj["kind"],
            obj["metadata"]["name"],
        ) in NAMESPACE_WIDE
        wanted = [label for label in STANDARD_LABELS if not (wide and label.endswith("/component"))]
        missing = [label for label in wanted if label not in labels]
        if missing:
            errors.append(f"{ref(obj)}: missing labels {missing}")
        if labels.get("app.kubernetes.io/version") != expected_version:
            errors.append(f"{ref(obj)}: app.kubernetes.io/version must be {expected_version!r}")
    for template in pod_templates(objects):
        missing = [label for label in STANDARD_LABELS if label not in template.labels]
        if missing:
            errors.append(f"{template.where}: pod template misses labels {missing}")
    return errors


def namespace_violations(objects: list[Obj], expected_namespace: str) -> list[str]:
    namespaces = of_kind(objects, "Namespace")
    if [ns["metadata"]["name"] for ns in namespaces] != [expected_namespace]:
        return [f"overlay must create exactly the namespace {expected_namespace!r}"]
    errors = []
    labels = namespaces[0]["metadata"].get("labels", {})
    for mode in POD_SECURITY_MODES:
        if labels.get(f"pod-security.kubernetes.io/{mode}") != "restricted":
            errors.append(
                f"Namespace/{expected_namespace}: pod-security.kubernetes.io/{mode} must be restricted"
            )
    for obj in objects:
        if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != expected_namespace:
            errors.append(f"{ref(obj)}: not in namespace {expected_namespace!r}")
    if of_kind(objects, "Secret"):
        errors.append("overlay renders a Secret: secret values never live in the repository")
    return errors


def availability_violations(objects: list[Obj]) -> list[str]:
    """Rolling updates, PDBs, HPAs and topology spread agree with each other."""
    errors = []
    hpas = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(objects, "HorizontalPodAutoscaler")}
    pdbs = of_kind(objects, "PodDisruptionBudget")
    deployments = of_kind(objects, "Deployment")
    for hpa in hpas.values():
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or find(objects, "Deployment", target["name"]) is None:
            errors.append(f"{ref(hpa)}: scaleTargetRef {target} is not a Deployment in the overlay")
        low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        if not 1 <= low <= high:
            errors.append(f"{ref(hpa)}: needs 1 <= minReplicas ({low}) <= maxReplicas ({high})")
        kinds = [m.get("resource", {}).get("name") for m in hpa["spec"].get("metrics", [])]
        if "cpu" not in kinds:
            errors.append(f"{ref(hpa)}: must scale on CPU")
    for deployment in deployments:
        where, spec = ref(deployment), deployment["spec"]
        name = deployment["metadata"]["name"]
        strategy = spec.get("strategy", {})
        if (
            strategy.get("type") != "RollingUpdate"
            or strategy.get("rollingUpdate", {}).get("maxUnavailable") != 0
        ):
            errors.append(f"{where}: strategy must be RollingUpdate with maxUnavailable 0")
        autoscaler = hpas.get(name)
        if autoscaler is not None and "replicas" in spec:
            errors.append(f"{where}: has spec.replicas although {ref(autoscaler)} owns the replica count")
        if autoscaler is None and "replicas" not in spec:
            errors.append(f"{where}: no HPA, so the overlay must set replicas")
        floor = (
            autoscaler["spec"].get("minReplicas", 1) if autoscaler is not None else spec.get("replicas", 1)
        )
        pod_labels = spec["template"]["metadata"].get("labels", {})
        if not _selects(spec["selector"]["matchLabels"], pod_labels):
            errors.append(f"{where}: selector does not match its own pod template")
        covering = [p for p in pdbs if _selects(p["spec"]["selector"]["matchLabels"], pod_labels)]
        if len(covering) != 1:
            errors.append(f"{where}: needs exactly one PodDisruptionBudget, has {len(covering)}")
        for pdb in covering:
            if "minAvailable" in pdb["spec"] and int(pdb["spec"]["minAvailable"]) >= floor:
                errors.append(f"{ref(pdb)}: minAvailable {pdb['spec']['minAvailable']} blocks every eviction")
            if "maxUnavailable" in pdb["spec"] and int(pdb["spec"]["maxUnavailable"]) < 1:
                errors.append(f"{ref(pdb)}: maxUnavailable 0 blocks every eviction")
        keys = {c["topologyKey"] for c in spec["template"]["spec"].get("topologySpreadConstraints", [])}
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
            if key not in keys:
                errors.append(f"{where}: no topology spread over {key}")
    return errors


def shutdown_violations(objects: list[Obj]) -> list[str]:
    """preStop sleep + the app's shutdown delay + drain bound + margin must fit in the grace period."""
    errors: list[str] = []
    for template in pod_templates(objects):
        if template.owner.get("kind") in RUN_TO_COMPLETION_KINDS:
            continue
        grace = template.spec.get("terminationGracePeriodSeconds", 30)
        for _, container in template.containers(include_init=False):
            drain = _app_setting(container, objects, "DRAIN_TIMEOUT_SECONDS")
            delay = _app_setting(container, objects, "SHUTDOWN_DELAY_SECONDS")
            missing = [
                name
                for name, value in (("DRAIN_TIMEOUT_SECONDS", drain), ("SHUTDOWN_DELAY_SECONDS", delay))
                if value is None
            ]
            if missing:
                errors.extend(
                    f"{template.where}: {name} is not set explicitly in its ConfigMap" for name in missing
                )
                continue
            assert drain is not None
            assert delay is not None
            pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            needed = pre_stop + delay + drain + SHUTDOWN_MARGIN_SECONDS
            if not needed < grace:
                errors.append(
                    f"{template.where}: preStop {pre_stop}s + shutdown delay {delay:g}s + drain {drain:g}s "
                    f"+ margin {SHUTDOWN_MARGIN_SECONDS}s = {needed:g}s must be < "
                    f"terminationGracePeriodSeconds {grace}"
                )
    return errors


def _app_setting(container: Obj, objects: list[Obj], name: str) -> float | None:
    """A numeric app setting as the container sees it: its env first, then its ConfigMaps."""
    for variable in container.get("env", []):
        if variable["name"] == name and "value" in variable:
            return float(variable["value"])
    for source in container.get("envFrom", []):
        config_map = find(objects, "ConfigMap", source.get("configMapRef", {}).get("name", ""))
        if config_map and name in config_map.get("data", {}):
            return float(config_map["data"][name])
    return None


def _peer_ports(rule: Obj) -> set[int | str]:
    return {port.get("port") for port in rule.get("ports", [])}


def network_violations(objects: list[Obj]) -> list[str]:
    """Default deny, every served port reachable only from named peers, egress only where needed."""
    policies = of_kind(objects, "NetworkPolicy")
    errors = []
    default_deny = [
        p
        for p in policies
        if p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    if not default_deny:
        errors.append("no default-deny NetworkPolicy (podSelector {} denying Ingress and Egress)")
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if not rule.get("from"):
                errors.append(f"{ref(policy)}: an ingress rule without `from` admits every peer")
        for rule in policy["spec"].get("egress", []):
            ports = _peer_ports(rule)
            if not ports or not ports <= ALLOWED_EGRESS_PORTS:
                errors.append(f"{ref(policy)}: egress to ports {sorted(map(str, ports))} is not allowed")
    for template in pod_templates(objects):
        selecting = [
            p
            for p in policies
            if p["spec"].get("podSelector")
            and _selects(p["spec"]["podSelector"].get("matchLabels", {}), template.labels)
        ]
        if not selecting:
            errors.append(f"{template.where}: no NetworkPolicy selects its pods")
            continue
        allowed_in = {
            port for p in selecting for rule in p["spec"].get("ingress", []) for port in _peer_ports(rule)
        }
        for _, container in template.containers(include_init=False):
            for port in container.get("ports", []):
                if port.get("name") not in allowed_in and port["containerPort"] not in allowed_in:
                    errors.append(
                        f"{template.where}: port {port.get('name')} is unreachable (no ingress rule)"
                    )
        allowed_out = {
            port for p in selecting for rule in p["spec"].get("egress", []) for port in _peer_ports(rule)
        }
        if 53 not in allowed_out:
            errors.append(f"{template.where}: egress to DNS (53) is not allowed, nothing will resolve")
        uses_database = any(
            v.get("name") == "DATABASE_URL" for _, c in template.containers() for v in c.get("env", [])
        )
        if uses_database and 5432 not in allowed_out:
            errors.append(f"{template.where}: egress to PostgreSQL (5432) is not allowed")
    return errors


def routing_violations(objects: list[Obj], expected_host: str) -> list[str]:
    """Services find pods and ports; the Ingress serves the environment's host over TLS."""
    errors = []
    templates = pod_templates(objects)
    for service in of_kind(objects, "Service"):
        selector = service["spec"].get("selector", {})
        targets = [t for t in templates if selector and _selects(selector, t.labels)]
        if not targets:
            errors.append(f"{ref(service)}: selector {selector} matches no pod template")
        names = {
            p.get("name")
            for t in targets
            for _, c in t.containers(include_init=False)
            for p in c.get("ports", [])
        }
        for port in service["spec"].get("ports", []):
            if isinstance(port.get("targetPort"), str) and port["targetPort"] not in names:
                errors.append(f"{ref(service)}: targetPort {port['targetPort']!r} is not a container port")
    ingresses = of_kind(objects, "Ingress")
    if len(ingresses) != 1:
        return [*errors, f"expected one Ingress, found {len(ingresses)}"]
    ingress = ingresses[0]["spec"]
    hosts = [rule.get("host") for rule in ingress.get("rules", [])]
    tls_hosts = [host for tls in ingress.get("tls", []) for host in tls.get("hosts", [])]
    if hosts != [expected_host]:
        errors.append(f"Ingress: hosts {hosts} must be [{expected_host!r}]")
    if (
        not tls_hosts
        or set(hosts) - set(tls_hosts)
        or not all(t.get("secretName") for t in ingress.get("tls", []))
    ):
        errors.append(f"Ingress: every host needs TLS with a secretName (tls hosts {tls_hosts})")
    for rule in ingress.get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            backend = path["backend"]["service"]
            target = find(objects, "Service", backend["name"])
            port_names = {p.get("name") for p in target["spec"]["ports"]} if target else set()
            if target is None or backend["port"].get("name") not in port_names:
                errors.append(f"Ingress: backend {backend} is not a Service port of the overlay")
    return errors


@dataclass(frozen=True)
class Expectations:
    """What an overlay must render, from config/environments.yaml."""

    namespace: str
    host: str
    image_repository: str
    image_tag: str


def policy_violations(objects: list[Obj], expected: Expectations) -> list[str]:
    errors = namespace_violations(objects, expected.namespace)
    errors += label_violations(objects, expected.image_tag)
    for template in pod_templates(objects):
        errors += pod_security_violations(template)
        errors += container_violations(template, objects, expected.image_repository)
    errors += availability_violations(objects)
    errors += shutdown_violations(objects)
    errors += network_violations(objects)
    errors += routing_violations(objects, expected.host)
    errors += crd_errors(objects)
    return errors

"""Check rendered Kubernetes manifests the way a cluster (and a strict platform team) would.

There is no cluster here, so each function takes the objects `kubectl kustomize` renders and
returns a list of readable violations ("Deployment/reference-service-api: ..."); an empty
list means the check passed. tests/k8s runs them on every overlay, and on deliberately broken
copies to prove that each one fails when it should.

One engine per concern: what a scanner checks object by object is left to it. checkov
(kit/checkov_scan.py, tests/k8s/test_k8s_checkov.py) owns pod security (root, privilege
escalation, capabilities, seccomp, read-only root filesystem, host namespaces and ports),
resource requests and limits, image tags and digests, liveness and readiness probes and the
service-account token. These functions check what no scanner knows: how objects fit together
(replicas, HPA and PDB floors; the shutdown budget against the app's settings; NetworkPolicy
ports and the Gateway's route; settings, Secret and ServiceAccount references; quotas) and the
kit's own contract (labels, namespace, the app's probe paths and timings, a writable /tmp).
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

from kit import k8s_crds
from kit.environments import PodPeer

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
NAMESPACE_WIDE = {
    ("Namespace", None),
    ("ConfigMap", None),
    ("ResourceQuota", None),
    ("LimitRange", None),
    ("NetworkPolicy", "default-deny-all"),
    ("NetworkPolicy", "reference-service-otlp"),
}

SECRET_NAME = "reference-service-secrets"  # noqa: S105 - a name, not a value
SECRET_KEYS = {
    "DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "WEBHOOK_URL",
    "WEBHOOK_SIGNING_SECRET",
}
# The synthetic probe's smoke account (k8s/components/synthetic-probe).
SECRET_KEYS |= {"SMOKE_EMAIL", "SMOKE_PASSWORD"}
# Egress the service may have: DNS, PostgreSQL, Redis, the webhook over HTTPS; the synthetic
# probe's: the API pods' port and the Pushgateway.
ALLOWED_EGRESS_PORTS = {53, 5432, 6379, 443, 8000, 9091}
# OTLP (gRPC, HTTP): only to a collector named by namespace and pod labels, never an address range.
OTLP_PORTS = {4317, 4318}
# Pinned Pod Security Standard version ("latest" would change the rules under running pods).
POD_SECURITY_VERSION = re.compile(r"^v1\.[0-9]+$")
# Spread domains; the API is the Deployment whose zone spread an environment may enforce.
ZONE, HOSTNAME = "topology.kubernetes.io/zone", "kubernetes.io/hostname"
API_NAME = "reference-service-api"
# Stakater Reloader: roll the Deployment when the named Secret changes.
RELOADER_ANNOTATION = "secret.reloader.stakater.com/reload"
# A liveness probe must outlast a busy event loop: seconds per try, and seconds of no answer.
LIVENESS_MIN_TIMEOUT_SECONDS = 5
LIVENESS_MIN_WINDOW_SECONDS = 30
# Seconds the app needs after its drain bound to close pools and flush logs (see api/deployment.yaml).
SHUTDOWN_MARGIN_SECONDS = 5
POD_SECURITY_MODES = ("enforce", "audit", "warn")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Pods that run to completion: no probes, no drain arithmetic (nothing routes traffic to them).
RUN_TO_COMPLETION_KINDS = {"Job", "CronJob"}
# Prometheus Operator kinds checked structurally by crd_errors; the others by kit/k8s_crds.py.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", *k8s_crds.KINDS}

Obj = dict[str, Any]


class RenderError(Exception):
    """kubectl kustomize refused the overlay (its stderr is the message)."""


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise RenderError("kubectl is not installed: it provides `kubectl kustomize` (docs/kubernetes.md)")
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
    by crd_errors instead (Gateway API and cert-manager against kit/k8s_crds.py), and any other
    kind without a schema is an error here.
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
    for obj in objects:
        if obj.get("kind") in k8s_crds.KINDS:
            errors.extend(k8s_crds.errors(obj))
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


def writable_tmp_violations(template: PodTemplate) -> list[str]:
    """A read-only root filesystem (checkov CKV_K8S_22) needs an emptyDir at /tmp to write to."""
    empty_dirs = {v["name"] for v in template.spec.get("volumes", []) if "emptyDir" in v}
    errors = []
    for role, container in template.containers():
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if mounts.get("/tmp") not in empty_dirs:  # noqa: S108 - a mount path in a pod spec
            errors.append(
                f"{template.where} {role} {container['name']!r}: needs an emptyDir mounted at /tmp "
                "(the root filesystem is read-only)"
            )
    return errors


def container_violations(template: PodTemplate, objects: list[Obj], image_repository: str) -> list[str]:
    """References the cluster must resolve (ServiceAccount, ConfigMaps, Secret keys, the overlay's
    image repository) and the probe and drain contract with the app."""
    where, spec = template.where, template.spec
    errors = []
    account = spec.get("serviceAccountName")
    if not account or account == "default":
        errors.append(f"{where}: needs its own serviceAccountName")
    elif find(objects, "ServiceAccount", account) is None:
        errors.append(f"{where}: ServiceAccount {account!r} is not part of the overlay")
    for role, container in template.containers():
        cwhere = f"{where} {role} {container['name']!r}"
        image = container.get("image", "")
        if _repository(image) != image_repository:
            errors.append(
                f"{cwhere}: image {image!r} is not from {image_repository} (overlay `images:` missing?)"
            )
        errors.extend(_settings_violations(cwhere, container, objects))
    if template.owner.get("kind") not in RUN_TO_COMPLETION_KINDS:
        for _, container in template.containers(include_init=False):
            errors.extend(_probe_violations(f"{where} container {container['name']!r}", container))
    return errors


def _repository(image: str) -> str:
    """The repository of `<repository>[:<tag>][@<digest>]` (a registry's port is not a tag)."""
    name = image.partition("@")[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


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
    """The app's probe contract; that liveness and readiness probes exist is checkov's (CKV_K8S_8/9)."""
    errors = []
    port_names = {p.get("name") for p in container.get("ports", [])}
    serves_http = "http" in port_names
    if "startupProbe" not in container:
        errors.append(f"{where}: startupProbe is missing")
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        port = container.get(probe_name, {}).get("httpGet", {}).get("port")
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
        liveness = container.get("livenessProbe", {})
        timeout = liveness.get("timeoutSeconds", 1)
        window = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
        if liveness and (timeout < LIVENESS_MIN_TIMEOUT_SECONDS or window < LIVENESS_MIN_WINDOW_SECONDS):
            errors.append(
                f"{where}: livenessProbe would restart a busy event loop (timeoutSeconds {timeout} must "
                f"be >= {LIVENESS_MIN_TIMEOUT_SECONDS}, periodSeconds x failureThreshold {window} "
                f"must be >= {LIVENESS_MIN_WINDOW_SECONDS})"
            )
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
        version = labels.get(f"pod-security.kubernetes.io/{mode}-version", "latest")
        if not POD_SECURITY_VERSION.match(version):
            errors.append(
                f"Namespace/{expected_namespace}: pod-security.kubernetes.io/{mode}-version must be "
                f"pinned (v1.<minor>), not {version!r}"
            )
    for obj in objects:
        if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != expected_namespace:
            errors.append(f"{ref(obj)}: not in namespace {expected_namespace!r}")
    if of_kind(objects, "Secret"):
        errors.append("overlay renders a Secret: secret values never live in the repository")
    return errors


def availability_violations(objects: list[Obj], min_zones: int | None = None) -> list[str]:
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
        if spec.get("minReadySeconds", 0) < 1:
            errors.append(
                f"{where}: minReadySeconds must be set (a pod that crashes right after its first good "
                "probe must stop the rollout, not count as available)"
            )
        errors.extend(topology_violations(deployment, min_zones if name == API_NAME else None))
    return errors


def topology_violations(deployment: Obj, min_zones: int | None) -> list[str]:
    """Spread that cannot strand pods, and zones enforced where the environment asks for it.

    Only nodes the pod may run on count as domains (nodeTaintsPolicy and nodeAffinityPolicy
    Honor): otherwise a tainted pool is an empty domain that pins the global minimum at 0. The
    spread over nodes is best effort: enforced, it needs one eligible node per replica.
    """
    where = ref(deployment)
    constraints = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    by_key = {c["topologyKey"]: c for c in constraints}
    errors = [f"{where}: no topology spread over {key}" for key in (ZONE, HOSTNAME) if key not in by_key]
    for constraint in constraints:
        key = constraint["topologyKey"]
        for policy in ("nodeTaintsPolicy", "nodeAffinityPolicy"):
            if constraint.get(policy) != "Honor":
                errors.append(
                    f"{where}: spread over {key} needs {policy}: Honor (tainted nodes are not domains)"
                )
    if HOSTNAME in by_key and by_key[HOSTNAME].get("whenUnsatisfiable") != "ScheduleAnyway":
        errors.append(
            f"{where}: spread over {HOSTNAME} must be ScheduleAnyway (DoNotSchedule needs a node per replica)"
        )
    zone = by_key.get(ZONE, {})
    enforced = zone.get("whenUnsatisfiable") == "DoNotSchedule" and zone.get("minDomains", 0) >= (
        min_zones or 0
    )
    if min_zones is not None and zone and not enforced:
        errors.append(
            f"{where}: spread over {ZONE} must be DoNotSchedule with minDomains >= {min_zones} "
            f"(got {zone.get('whenUnsatisfiable')}, minDomains {zone.get('minDomains')})"
        )
    return errors


def forwarded_violations(objects: list[Obj]) -> list[str]:
    """Behind a proxy that appends X-Forwarded-For, trusting every hop trusts the client's own entry."""
    errors = []
    for config_map in of_kind(objects, "ConfigMap"):
        value = config_map.get("data", {}).get("FORWARDED_ALLOW_IPS")
        if value is not None and "*" in value:
            errors.append(
                f"{ref(config_map)}: FORWARDED_ALLOW_IPS {value!r} trusts a client-written X-Forwarded-For; "
                "list the proxies' addresses"
            )
    return errors


def secret_rollout_violations(objects: list[Obj]) -> list[str]:
    """Every workload that reads the Secret is rolled when it changes (Stakater Reloader)."""
    errors = []
    for template in pod_templates(objects):
        if template.owner["kind"] in RUN_TO_COMPLETION_KINDS:
            continue  # each run starts new pods, which read the Secret as it is then
        reads = {
            ref_.get("name")
            for _, container in template.containers()
            for variable in container.get("env", [])
            for ref_ in [variable.get("valueFrom", {}).get("secretKeyRef", {})]
            if ref_
        }
        if not reads:
            continue
        annotated = template.owner["metadata"].get("annotations", {}).get(RELOADER_ANNOTATION, "")
        missing = sorted(reads - {name.strip() for name in annotated.split(",") if name.strip()})
        if missing:
            errors.append(
                f"{template.where}: reads Secret {missing} but a change would not roll it "
                f"(annotation {RELOADER_ANNOTATION})"
            )
    return errors


def quota_violations(objects: list[Obj]) -> list[str]:
    """A namespace's ResourceQuota must hold every pod during a rolling update (maxSurge on)."""
    quotas = of_kind(objects, "ResourceQuota")
    if not quotas:
        return []
    needed = {
        "pods": 0.0,
        "requests.cpu": 0.0,
        "limits.cpu": 0.0,
        "requests.memory": 0.0,
        "limits.memory": 0.0,
    }
    for deployment in of_kind(objects, "Deployment"):
        spec = deployment["spec"]
        surge = int(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 1))
        pods = spec.get("replicas", 1) + surge
        needed["pods"] += pods
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                needed[f"{section}.{resource}"] += pods * _pod_effective(
                    spec["template"]["spec"], section, resource
                )
    errors = []
    for quota in quotas:
        for key, value in quota["spec"].get("hard", {}).items():
            if key in needed and quantity(value) < needed[key] - 1e-9:
                errors.append(
                    f"{ref(quota)}: {key} {value} is below what a rolling update needs "
                    f"({needed[key]:g}{' bytes' if 'memory' in key else ''})"
                )
    return errors


def _pod_effective(spec: Obj, section: str, resource: str) -> float:
    """What the scheduler and quota charge a pod: max(any init container, sum of containers)."""

    def amount(container: Obj) -> float:
        value = container.get("resources", {}).get(section, {}).get(resource)
        return quantity(value) if value is not None else 0.0

    containers = sum(amount(c) for c in spec.get("containers", []))
    return max([containers, *(amount(c) for c in spec.get("initContainers", []))])


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


def network_violations(objects: list[Obj], edge_peer: PodPeer | None = None) -> list[str]:
    """Default deny, every served port reachable only from named peers, egress only where needed.

    With `edge_peer`, the pods behind the HTTPRoute must admit exactly those proxies.
    """
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
            to_named_pods = bool(rule.get("to")) and all(
                "namespaceSelector" in peer and "podSelector" in peer and "ipBlock" not in peer
                for peer in rule["to"]
            )
            if ports and ports <= OTLP_PORTS and to_named_pods:
                continue
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
    if edge_peer is not None:
        errors.extend(_edge_admission_violations(objects, policies, edge_peer))
    return errors


def admits(rule: Obj, peer: PodPeer) -> bool:
    for source in rule.get("from", []):
        namespaces = source.get("namespaceSelector", {}).get("matchLabels", {})
        pods = source.get("podSelector", {}).get("matchLabels", {})
        if (
            namespaces.get("kubernetes.io/metadata.name") == peer.namespace
            and pods
            and _selects(pods, peer.pod_labels)
        ):
            return True
    return False


def _edge_admission_violations(objects: list[Obj], policies: list[Obj], peer: PodPeer) -> list[str]:
    """The Gateway's proxies reach every pod behind an HTTPRoute backend, on the backend's port."""
    errors = []
    templates = pod_templates(objects)
    for route in of_kind(objects, "HTTPRoute"):
        for backend in (b for rule in route["spec"].get("rules", []) for b in rule.get("backendRefs", [])):
            service = find(objects, "Service", backend["name"])
            if service is None:
                continue
            port = next((p for p in service["spec"]["ports"] if p.get("port") == backend.get("port")), None)
            if port is None:
                continue
            target = port.get("targetPort", port["port"])
            for template in (t for t in templates if _selects(service["spec"].get("selector", {}), t.labels)):
                numbers = {
                    p["containerPort"]
                    for _, c in template.containers(include_init=False)
                    for p in c.get("ports", [])
                    if p.get("name") == target or p["containerPort"] == target
                }
                admitted = any(
                    admits(rule, peer) and ({target, *numbers} & _peer_ports(rule))
                    for policy in policies
                    if policy["spec"].get("podSelector")
                    and _selects(policy["spec"]["podSelector"].get("matchLabels", {}), template.labels)
                    for rule in policy["spec"].get("ingress", [])
                )
                if not admitted:
                    errors.append(
                        f"{template.where}: no NetworkPolicy admits the Gateway's proxies "
                        f"({peer.namespace} {peer.pod_labels}) on port {target!r}"
                    )
    return errors


def routing_violations(
    objects: list[Obj], expected_host: str, gateway: tuple[str, str] | None = None
) -> list[str]:
    """Services find pods and ports; the HTTPRoute serves the environment's host through the Gateway."""
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
    routes = of_kind(objects, "HTTPRoute")
    if len(routes) != 1:
        return [*errors, f"expected one HTTPRoute, found {len(routes)}"]
    route = routes[0]
    where = ref(route)
    spec = route["spec"]
    if spec.get("hostnames") != [expected_host]:
        errors.append(f"{where}: hostnames {spec.get('hostnames')} must be [{expected_host!r}]")
    if gateway is not None:
        parents = [(p.get("namespace"), p.get("name")) for p in spec.get("parentRefs", [])]
        if parents != [gateway]:
            errors.append(f"{where}: parentRefs {parents} must be the shared Gateway {gateway}")
    for rule in spec.get("rules", []):
        paths = [m.get("path", {}) for m in rule.get("matches", [])]
        if not paths or any(p.get("type") != "PathPrefix" or p.get("value") != "/api" for p in paths):
            errors.append(f"{where}: a rule must match only PathPrefix /api (got {paths})")
        for backend in rule.get("backendRefs", []):
            target = find(objects, "Service", backend["name"])
            ports = {p.get("port") for p in target["spec"]["ports"]} if target else set()
            if target is None or backend.get("port") not in ports:
                errors.append(
                    f"{where}: backend {backend['name']}:{backend.get('port')} is not a Service port "
                    f"of the overlay (ports {sorted(ports)})"
                )
    return errors


# --- the shared edge (k8s/platform/gateway) and the routes that attach to it --------------

ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"


def hostname_matches(listener: str | None, host: str) -> bool:
    """Gateway API hostname matching: "*.example.com" covers any name below example.com."""
    if listener is None:
        return True
    if listener.startswith("*."):
        return host.endswith(listener[1:]) and len(host) > len(listener) - 1
    return listener == host


def _selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    if not _selects(selector.get("matchLabels", {}), labels):
        return False
    for requirement in selector.get("matchExpressions", []):
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values", [])
        present = key in labels
        ok = {
            "Exists": present,
            "DoesNotExist": not present,
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
        }[operator]
        if not ok:
            return False
    return True


def gateway_violations(platform: list[Obj]) -> list[str]:
    """The Gateway runs on Envoy Gateway, and every HTTPS listener has a certificate that covers it."""
    errors = []
    classes = {c["metadata"]["name"]: c for c in of_kind(platform, "GatewayClass")}
    issuers = {i["metadata"]["name"] for i in of_kind(platform, "ClusterIssuer")}
    for certificate in of_kind(platform, "Certificate"):
        issuer = certificate["spec"]["issuerRef"]
        if issuer.get("kind") != "ClusterIssuer" or issuer["name"] not in issuers:
            errors.append(f"{ref(certificate)}: issuer {issuer} is not a ClusterIssuer of the platform")
    for gateway in of_kind(platform, "Gateway"):
        where = ref(gateway)
        namespace = gateway["metadata"].get("namespace")
        gateway_class = classes.get(gateway["spec"]["gatewayClassName"])
        if gateway_class is None:
            errors.append(f"{where}: GatewayClass {gateway['spec']['gatewayClassName']!r} is not defined")
        elif gateway_class["spec"]["controllerName"] != ENVOY_GATEWAY_CONTROLLER:
            errors.append(f"{where}: GatewayClass must be Envoy Gateway's ({ENVOY_GATEWAY_CONTROLLER})")
        names = [listener["name"] for listener in gateway["spec"]["listeners"]]
        if len(set(names)) != len(names):
            errors.append(f"{where}: duplicate listener names {names}")
        for listener in gateway["spec"]["listeners"]:
            if listener["protocol"] != "HTTPS":
                continue
            lwhere = f"{where} listener {listener['name']!r}"
            refs = listener.get("tls", {}).get("certificateRefs", [])
            if not refs:
                errors.append(f"{lwhere}: HTTPS without a certificateRef")
            for secret in refs:
                issued = [
                    c
                    for c in of_kind(platform, "Certificate")
                    if c["metadata"].get("namespace") == secret.get("namespace", namespace)
                    and c["spec"]["secretName"] == secret["name"]
                ]
                if not issued:
                    errors.append(f"{lwhere}: no Certificate writes Secret {secret['name']!r}")
                elif listener.get("hostname") not in issued[0]["spec"]["dnsNames"]:
                    errors.append(
                        f"{lwhere}: Certificate {issued[0]['metadata']['name']!r} does not cover "
                        f"{listener.get('hostname')!r} (dnsNames {issued[0]['spec']['dnsNames']})"
                    )
    return errors


def attachment_violations(platform: list[Obj], overlay: list[Obj]) -> list[str]:
    """The HTTPRoute attaches: its listener exists, is HTTPS, covers its host and admits its namespace."""
    errors = []
    namespaces = of_kind(overlay, "Namespace")
    namespace_labels = {
        **(namespaces[0]["metadata"].get("labels", {}) if namespaces else {}),
        **({"kubernetes.io/metadata.name": namespaces[0]["metadata"]["name"]} if namespaces else {}),
    }
    for route in of_kind(overlay, "HTTPRoute"):
        where = ref(route)
        route_namespace = route["metadata"].get("namespace")
        for parent in route["spec"]["parentRefs"]:
            gateway = next(
                (
                    g
                    for g in of_kind(platform, "Gateway")
                    if g["metadata"]["name"] == parent["name"]
                    and g["metadata"].get("namespace") == parent.get("namespace", route_namespace)
                ),
                None,
            )
            if gateway is None:
                errors.append(
                    f"{where}: parent Gateway {parent.get('namespace')}/{parent['name']} does not exist"
                )
                continue
            listener = next(
                (lst for lst in gateway["spec"]["listeners"] if lst["name"] == parent.get("sectionName")),
                None,
            )
            if listener is None:
                errors.append(
                    f"{where}: Gateway {ref(gateway)} has no listener {parent.get('sectionName')!r}"
                )
                continue
            if listener["protocol"] != "HTTPS":
                errors.append(f"{where}: listener {listener['name']!r} is {listener['protocol']}, not HTTPS")
            for host in route["spec"].get("hostnames", []):
                if not hostname_matches(listener.get("hostname"), host):
                    errors.append(
                        f"{where}: host {host!r} is not covered by listener {listener['name']!r} "
                        f"({listener.get('hostname')!r})"
                    )
            allowed = listener.get("allowedRoutes", {}).get("namespaces", {})
            admitted = {
                "All": True,
                "Same": route_namespace == gateway["metadata"].get("namespace"),
                "Selector": _selector_matches(allowed.get("selector", {}), namespace_labels),
            }[allowed.get("from", "Same")]
            if not admitted:
                errors.append(
                    f"{where}: listener {listener['name']!r} does not admit routes from namespace "
                    f"{route_namespace!r}"
                )
    return errors


@dataclass(frozen=True)
class Expectations:
    """What an overlay must render, from config/environments.yaml."""

    namespace: str
    host: str
    image_repository: str
    image_tag: str
    # The shared Gateway (namespace, name) and its proxies; zones the API must spread over.
    gateway: tuple[str, str] | None = None
    edge_peer: PodPeer | None = None
    min_zones: int | None = None


def policy_violations(objects: list[Obj], expected: Expectations) -> list[str]:
    errors = namespace_violations(objects, expected.namespace)
    errors += label_violations(objects, expected.image_tag)
    for template in pod_templates(objects):
        errors += writable_tmp_violations(template)
        errors += container_violations(template, objects, expected.image_repository)
    errors += availability_violations(objects, expected.min_zones)
    errors += shutdown_violations(objects)
    errors += network_violations(objects, expected.edge_peer)
    errors += routing_violations(objects, expected.host, expected.gateway)
    errors += secret_rollout_violations(objects)
    errors += forwarded_violations(objects)
    errors += quota_violations(objects)
    errors += crd_errors(objects)
    return errors

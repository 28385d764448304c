"""A stand-in for the Kubernetes API server: a real HTTP server on loopback serving real JSON.

The objects are the ones `kubectl kustomize k8s/overlays/<env>` renders, with what the cluster
would add (uid, generation, resourceVersion, creation time, the revision annotation, the
ReplicaSets and Pods the controllers create) and a status per scenario:

    healthy        every replica updated, ready and available
    rolling_out    the API mid-rollout: one new pod starting next to the old ones
    crash_looping  the worker's new pod in CrashLoopBackOff, no worker available
    hpa_at_max     the HPA wants its maximum
    rbac_denied    every call answers 403 Forbidden, as for a user without a RoleBinding

It answers the paths the official `kubernetes` client calls for the kit (GET/PATCH Deployments,
lists with labelSelector, HPA, PDBs, the Service proxy, Jobs, pod logs) the way the API server
does, including `Status` bodies for errors. A PATCH of a Deployment's template is "rolled out"
by the stand-in's controller on the next read. A created Job really runs its container's
command (the venv's `kit`) with the environment the pod would get (ConfigMap data from the
overlay, Secret values given to the stand-in): the in-cluster `kit dead-letters` path is real.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import yaml

from kit.k8s_checks import render
from kit.k8s_overlays import API_DEPLOYMENT, OVERLAYS, WORKER_DEPLOYMENT
from kit.paths import ROOT

Obj = dict[str, Any]
SCENARIOS = ("healthy", "rolling_out", "crash_looping", "hpa_at_max", "rbac_denied")
CREATED = "2026-12-01T08:00:00Z"
REVISION = "deployment.kubernetes.io/revision"
OLD_TAG = "0.0.9"
KIT = ROOT / ".venv" / "bin" / "kit"

_RENDERED: dict[str, list[Obj]] = {}


def rendered(env: str) -> list[Obj]:
    """The overlay's objects (rendered once per test session)."""
    if env not in _RENDERED:
        _RENDERED[env] = render(OVERLAYS / env)
    return copy.deepcopy(_RENDERED[env])


def _status(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _hash(text: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_OID, text).hex[:10]


def _with_tag(template: Obj, tag: str) -> Obj:
    template = copy.deepcopy(template)
    for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
        container["image"] = re.sub(r":[^:@/]+(@.*)?$", f":{tag}", container["image"])
    return template


@dataclass
class Cluster:
    """The stand-in's object store for one namespace."""

    namespace: str
    scenario: str
    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)  # (kind, name) -> object
    config_data: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    service_backend: str | None = None
    logs: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    pending_rollouts: set[str] = field(default_factory=set)
    # When set, every request is authorised against this Role's rules, as RBAC would (403 else).
    role: Obj | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of_kind(self, kind: str) -> list[Obj]:
        return [obj for (k, _), obj in self.objects.items() if k == kind]

    def add(self, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", self.namespace)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", CREATED)
        meta.setdefault("resourceVersion", "1000")
        meta.setdefault("generation", 1)
        self.objects[(obj["kind"], meta["name"])] = obj
        return obj


def build(env: str, scenario: str, *, namespace: str | None = None) -> Cluster:
    """The namespace of overlay `env` as the API server would show it in `scenario`."""
    assert scenario in SCENARIOS, scenario
    objects = rendered(env)
    ns_obj = next(o for o in objects if o["kind"] == "Namespace")
    cluster = Cluster(namespace=namespace or ns_obj["metadata"]["name"], scenario=scenario)
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            cluster.config_data = dict(obj.get("data", {}))
        obj["metadata"].pop("namespace", None)
        if obj["kind"] == "Namespace":
            obj["metadata"]["name"] = cluster.namespace
            obj["status"] = {"phase": "Active"}
            cluster.objects[("Namespace", cluster.namespace)] = obj
            continue
        cluster.add(obj)
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in cluster.of_kind("HorizontalPodAutoscaler")}
    for name in (API_DEPLOYMENT, WORKER_DEPLOYMENT):
        deployment = cluster.objects[("Deployment", name)]
        hpa = hpas.get(name)
        if hpa is not None:  # the HPA wrote the replica count
            desired = (
                hpa["spec"]["maxReplicas"] if scenario == "hpa_at_max" else hpa["spec"].get("minReplicas", 1)
            )
            deployment["spec"]["replicas"] = desired
        deployment["spec"].setdefault("replicas", 1)
        deployment["metadata"]["generation"] = 3
        deployment["metadata"].setdefault("annotations", {})[REVISION] = "3"
        _replica_sets(cluster, deployment)
        _settle(cluster, deployment)
        if hpa is not None:
            hpa["status"] = {
                "currentReplicas": deployment["spec"]["replicas"],
                "desiredReplicas": deployment["spec"]["replicas"],
                "currentMetrics": [],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}],
            }
    for pdb in cluster.of_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        pods = [p for p in cluster.of_kind("Pod") if _matches(selector, p["metadata"].get("labels", {}))]
        healthy = sum(1 for p in pods if _ready(p))
        desired_healthy = max(0, len(pods) - int(pdb["spec"].get("maxUnavailable", 1)))
        pdb["status"] = {
            "observedGeneration": 1,
            "disruptionsAllowed": max(0, healthy - desired_healthy),
            "currentHealthy": healthy,
            "desiredHealthy": desired_healthy,
            "expectedPods": len(pods),
        }
    return cluster


def _replica_sets(cluster: Cluster, deployment: Obj) -> None:
    """Revision 2 (the previous release) and 3 (the current one), as the controller keeps them."""
    name = deployment["metadata"]["name"]
    current_tag = re.search(r":([^:@/]+)", deployment["spec"]["template"]["spec"]["containers"][0]["image"])
    assert current_tag
    for revision, tag in ((2, OLD_TAG), (3, current_tag.group(1))):
        template = _with_tag(deployment["spec"]["template"], tag)
        pod_hash = _hash(json.dumps(template, sort_keys=True))
        template["metadata"]["labels"]["pod-template-hash"] = pod_hash
        cluster.add(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{pod_hash}",
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": {
                        REVISION: str(revision),
                        "deployment.kubernetes.io/desired-replicas": "1",
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": deployment["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {"replicas": 0, "selector": deployment["spec"]["selector"], "template": template},
            }
        )


def _current_rs(cluster: Cluster, deployment: Obj) -> Obj:
    revision = deployment["metadata"]["annotations"][REVISION]
    return next(
        rs
        for rs in cluster.of_kind("ReplicaSet")
        if rs["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
        and rs["metadata"]["annotations"][REVISION] == revision
    )


def _pod(cluster: Cluster, rs: Obj, index: int, *, ready: bool, crash: bool = False) -> None:
    template = rs["spec"]["template"]
    name = f"{rs['metadata']['name']}-{_hash(rs['metadata']['name'] + str(index))[:5]}"
    containers = []
    for container in template["spec"]["containers"]:
        status: Obj = {
            "name": container["name"],
            "image": container["image"],
            "ready": ready,
            "started": ready,
            "restartCount": 0,
            "state": {"running": {"startedAt": CREATED}},
        }
        if crash:
            status.update(
                restartCount=7,
                state={
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 5m0s restarting failed container",
                    }
                },
                lastState={
                    "terminated": {
                        "reason": "Error",
                        "exitCode": 2,
                        "startedAt": CREATED,
                        "finishedAt": CREATED,
                    }
                },
            )
        containers.append(status)
    init = [
        {
            "name": c["name"],
            "image": c["image"],
            "ready": True,
            "restartCount": 0,
            "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
        }
        for c in template["spec"].get("initContainers", [])
    ]
    flag = "True" if ready else "False"
    cluster.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": dict(template["metadata"]["labels"]),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": rs["metadata"]["name"],
                        "uid": rs["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": flag},
                    {"type": "ContainersReady", "status": flag},
                    {"type": "PodScheduled", "status": "True"},
                ],
                "initContainerStatuses": init,
                "containerStatuses": containers,
                "podIP": f"10.1.0.{index + 10}",
                "startTime": CREATED,
            },
        }
    )


def _settle(cluster: Cluster, deployment: Obj, *, scenario: str | None = None) -> None:
    """Pods and status of one Deployment as the controllers leave them in the scenario."""
    scenario = scenario or cluster.scenario
    name = deployment["metadata"]["name"]
    desired = deployment["spec"]["replicas"]
    for key in [
        k
        for k, o in cluster.objects.items()
        if k[0] == "Pod" and o["metadata"]["name"].startswith(name + "-")
    ]:
        del cluster.objects[key]
    current = _current_rs(cluster, deployment)
    old = [
        rs
        for rs in cluster.of_kind("ReplicaSet")
        if rs["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"] and rs is not current
    ]
    generation = deployment["metadata"]["generation"]
    progressing = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
    if scenario == "rolling_out" and name == API_DEPLOYMENT:
        for i in range(desired):
            _pod(cluster, old[0], i, ready=True)
        _pod(cluster, current, desired, ready=False)
        status = {
            "replicas": desired + 1,
            "updatedReplicas": 1,
            "readyReplicas": desired,
            "availableReplicas": desired,
            "unavailableReplicas": 1,
        }
        progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
    elif scenario == "crash_looping" and name == WORKER_DEPLOYMENT:
        for i in range(desired):
            _pod(cluster, current, i, ready=False, crash=True)
        status = {
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "unavailableReplicas": desired,
        }
    else:
        for i in range(desired):
            _pod(cluster, current, i, ready=True)
        status = {
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": desired,
            "availableReplicas": desired,
        }
    available = "True" if status.get("availableReplicas", 0) > 0 else "False"
    deployment["status"] = {
        "observedGeneration": generation,
        **status,
        "conditions": [
            {"type": "Available", "status": available, "reason": "MinimumReplicasAvailable"},
            progressing,
        ],
    }


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _label_selector(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return dict(part.split("=", 1) for part in text.split(","))


def _ready(pod: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _apply_json_patch(obj: Obj, operations: list[Obj]) -> None:
    for op in operations:
        assert op["op"] == "replace", op
        *parents, leaf = op["path"].strip("/").split("/")
        target = obj
        for part in parents:
            target = target[part]
        target[leaf] = op["value"]


# --- HTTP ---------------------------------------------------------------------------------

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)$"), "namespace"),
    (
        "GET",
        re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)$"),
        "deployment",
    ),
    ("PATCH", re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)$"), "patch"),
    ("GET", re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/replicasets$"), "list:ReplicaSet"),
    ("GET", re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods$"), "list:Pod"),
    ("GET", re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log$"), "log"),
    (
        "GET",
        re.compile(
            r"^/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers/(?P<name>[^/]+)$"
        ),
        "get:HorizontalPodAutoscaler",
    ),
    (
        "GET",
        re.compile(r"^/apis/policy/v1/namespaces/(?P<ns>[^/]+)/poddisruptionbudgets$"),
        "list:PodDisruptionBudget",
    ),
    (
        "GET",
        re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<name>[^/]+)/proxy/(?P<path>.*)$"),
        "proxy",
    ),
    ("POST", re.compile(r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs$"), "create_job"),
    ("GET", re.compile(r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)$"), "get:Job"),
    ("DELETE", re.compile(r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)$"), "delete:Job"),
]
_LIST_KIND = {
    "ReplicaSet": "ReplicaSetList",
    "Pod": "PodList",
    "PodDisruptionBudget": "PodDisruptionBudgetList",
}
_RESOURCE = {
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Job": "jobs",
    "Deployment": "deployments",
}


class _Handler(BaseHTTPRequestHandler):
    cluster: Cluster

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _dispatch(self, method: str) -> None:
        cluster = self.cluster
        url = urlsplit(self.path)
        path = unquote(url.path)  # the client escapes ':' and '/' in names; the API server decodes them
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        cluster.requests.append((method, path))
        body = (
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if method in ("POST", "PATCH")
            else b""
        )
        if cluster.scenario == "rbac_denied":
            self._send(
                403,
                _status(
                    403,
                    "Forbidden",
                    f'{path} is forbidden: User "kit-test" cannot '
                    f"{method.lower()} resource in API group at the cluster scope",
                ),
            )
            return
        if cluster.role is not None and not _allowed(cluster.role, method, path):
            group, resource, verb = _attributes(method, path)
            self._send(
                403,
                _status(
                    403,
                    "Forbidden",
                    f'{resource} is forbidden: User "kit-test" cannot {verb} '
                    f'resource "{resource}" in API group "{group}"',
                ),
            )
            return
        for route_method, pattern, action in _ROUTES:
            match = pattern.match(path)
            if route_method == method and match:
                params = match.groupdict()
                if params.get("ns") != cluster.namespace and action != "namespace":
                    self._send(404, _status(404, "NotFound", f'namespaces "{params.get("ns")}" not found'))
                    return
                with cluster.lock:
                    code, answer = self._act(action, params, query, body)
                if isinstance(answer, str):
                    self._send(code, answer.encode(), "text/plain")
                elif isinstance(answer, tuple):
                    self._send(code, answer[0], answer[1])
                else:
                    self._send(code, answer)
                return
        self._send(
            404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
        )

    def _act(
        self, action: str, params: dict[str, str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        cluster = self.cluster
        kind, _, verb_kind = action.partition(":")
        if action == "namespace":
            obj = cluster.objects.get(("Namespace", params["ns"]))
            return (
                (200, obj)
                if obj
                else (404, _status(404, "NotFound", f'namespaces "{params["ns"]}" not found'))
            )
        if action == "deployment":
            obj = cluster.objects.get(("Deployment", params["name"]))
            if obj is None:
                return 404, _status(404, "NotFound", f'deployments.apps "{params["name"]}" not found')
            if params["name"] in cluster.pending_rollouts:  # the controller catches up on the next read
                cluster.pending_rollouts.discard(params["name"])
                _settle(cluster, obj, scenario="healthy")
            return 200, obj
        if action == "patch":
            assert self.headers["Content-Type"] == "application/json-patch+json", self.headers["Content-Type"]
            obj = cluster.objects[("Deployment", params["name"])]
            _apply_json_patch(obj, json.loads(body))
            self._roll(obj)
            return 200, obj
        if kind == "list":
            selector = _label_selector(query.get("labelSelector"))
            items = [
                o for o in cluster.of_kind(verb_kind) if _matches(selector, o["metadata"].get("labels", {}))
            ]
            return 200, {
                "kind": _LIST_KIND[verb_kind],
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1000"},
                "items": items,
            }
        if kind == "get":
            obj = cluster.objects.get((verb_kind, params["name"]))
            if obj is None:
                return 404, _status(404, "NotFound", f'{_RESOURCE[verb_kind]} "{params["name"]}" not found')
            return 200, obj
        if kind == "delete":
            obj = cluster.objects.pop((verb_kind, params["name"]), None)
            if obj is None:
                return 404, _status(404, "NotFound", f'{_RESOURCE[verb_kind]} "{params["name"]}" not found')
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        if action == "log":
            if params["name"] not in cluster.logs:
                return 404, _status(404, "NotFound", f'pods "{params["name"]}" not found')
            return 200, cluster.logs[params["name"]]
        if action == "proxy":
            if cluster.service_backend is None:
                return 503, _status(503, "ServiceUnavailable", "no endpoints available for service")
            response = httpx.get(f"{cluster.service_backend}/{params['path']}", timeout=10)
            return response.status_code, (
                response.content,
                response.headers.get("content-type", "text/plain"),
            )
        if action == "create_job":
            return self._run_job(json.loads(body))
        raise AssertionError(action)

    def _roll(self, deployment: Obj) -> None:
        """What the Deployment controller does with a new template: find or make its ReplicaSet."""
        cluster = self.cluster
        template = copy.deepcopy(deployment["spec"]["template"])
        owned = [
            rs
            for rs in cluster.of_kind("ReplicaSet")
            if rs["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
        ]
        newest = max(int(rs["metadata"]["annotations"][REVISION]) for rs in owned)
        match = next((rs for rs in owned if _strip_hash(rs["spec"]["template"]) == template), None)
        if match is None:
            raise AssertionError("the stand-in only rolls to a kept ReplicaSet")
        match["metadata"]["annotations"][REVISION] = str(newest + 1)
        deployment["metadata"]["annotations"][REVISION] = str(newest + 1)
        deployment["metadata"]["generation"] += 1
        cluster.pending_rollouts.add(deployment["metadata"]["name"])

    def _run_job(self, job: Obj) -> tuple[int, Any]:
        cluster = self.cluster
        name = job["metadata"]["name"]
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {"PATH": "/usr/bin:/bin"}
        for source in container.get("envFrom", []):
            assert "configMapRef" in source
            env.update(cluster.config_data)
        for variable in container.get("env", []):
            source = variable.get("valueFrom", {})
            if "secretKeyRef" in source:
                env[variable["name"]] = cluster.secrets[source["secretKeyRef"]["key"]]
            elif "configMapKeyRef" in source:
                env[variable["name"]] = cluster.config_data[source["configMapKeyRef"]["key"]]
            else:
                env[variable["name"]] = variable["value"]
        command = container["command"]
        assert command[0] == "kit", command
        result = subprocess.run(
            [str(KIT), *command[1:]], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        pod_name = f"{name}-{_hash(name)[:5]}"
        cluster.logs[pod_name] = result.stdout + result.stderr
        job["metadata"].update(namespace=cluster.namespace, uid=str(uuid.uuid4()), creationTimestamp=CREATED)
        job["status"] = {"succeeded": 1} if result.returncode == 0 else {"failed": 1}
        cluster.objects[("Job", name)] = job
        labels = {
            **job["spec"]["template"]["metadata"]["labels"],
            "job-name": name,
            "batch.kubernetes.io/job-name": name,
        }
        cluster.add(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "labels": labels},
                "spec": job["spec"]["template"]["spec"],
                "status": {"phase": "Succeeded" if result.returncode == 0 else "Failed"},
            }
        )
        return 201, job

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


_RESOURCE_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?"
    r"(?:/(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?)?"
)


def _attributes(method: str, path: str) -> tuple[str, str, str]:
    """(API group, resource[/subresource], verb) of a request, as the API server's RBAC sees it."""
    match = _RESOURCE_PATH.match(path)
    assert match, path
    parts = match.groupdict()
    resource, name = parts["resource"], parts["name"]
    if resource is None:  # /api/v1/namespaces/<ns>: the Namespace object itself
        resource, name = "namespaces", parts["ns"]
    if parts["sub"]:
        resource = f"{resource}/{parts['sub']}"
    verb = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}.get(method, "get" if name else "list")
    return parts["group"] or "", resource, verb


def _allowed(role: Obj, method: str, path: str) -> bool:
    if path.startswith("/api/v1/namespaces/") and path.count("/") == 4:
        return False  # reading a Namespace is cluster-scoped: a Role cannot grant it
    group, resource, verb = _attributes(method, path)
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in role["rules"]
    )


def _strip_hash(template: Obj) -> Obj:
    template = copy.deepcopy(template)
    template["metadata"]["labels"].pop("pod-template-hash", None)
    return template


@contextlib.contextmanager
def serve(cluster: Cluster) -> Iterator[str]:
    """The stand-in on a free loopback port; yields its base URL."""
    handler = type("Handler", (_Handler,), {"cluster": cluster})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(path: Path, server: str, context: str = "standin") -> Path:
    """A kubeconfig whose context `context` points at `server` with a bearer token."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": context, "cluster": {"server": server}}],
                "users": [{"name": "kit-test", "user": {"token": "kit-test-token"}}],
                "contexts": [{"name": context, "context": {"cluster": context, "user": "kit-test"}}],
                "current-context": context,
            }
        )
    )
    return path

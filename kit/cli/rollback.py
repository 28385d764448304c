"""`kit rollback --env <env>`: both Deployments back to their previous release, then wait.

What `kubectl rollout undo` does, for the API and the worker together (one release = one image
for both): the previous ReplicaSet's pod template (by `deployment.kubernetes.io/revision`)
replaces the Deployment's, as one JSON patch with the annotations kubectl keeps. Migrations are
never rolled back: the older release's migration step accepts a database that is ahead of it
(docs/kubernetes.md, "Migrations"), so its pods start against the newer schema.

The next `kubectl apply -k` / `pulumi up` of the overlay puts the newer image back: record the
rollback in git (revert the promotion commit) as the runbooks say.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass
from typing import Any

from kit.cli import envs, kube, output
from kit.cli.errors import FAILED, NOT_FOUND, OK, USAGE, KitError
from kit.cli.status import rollout_state

REVISION = "deployment.kubernetes.io/revision"
# kubectl's annotationsToSkip (pkg/polymorphichelpers/rollback.go): kept from the Deployment,
# never copied from the ReplicaSet.
SKIPPED_ANNOTATIONS = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}
POLL_SECONDS = 2.0


@dataclass
class Plan:
    deployment: str
    from_revision: int
    to_revision: int
    from_image: str
    to_image: str
    patch: list[dict[str, Any]]


def _image(template: dict[str, Any]) -> str:
    containers = template.get("spec", {}).get("containers", [])
    return str(containers[0].get("image")) if containers else "?"


def _revision(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("annotations", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def plan(deployment: dict[str, Any], replica_sets: list[dict[str, Any]], to_revision: int | None) -> Plan:
    """The patch `kubectl rollout undo [--to-revision]` would send."""
    name = deployment["metadata"]["name"]
    if deployment.get("spec", {}).get("paused"):
        raise KitError(f"{name} is paused: resume it (kubectl rollout resume) before rolling back", USAGE)
    uid = deployment["metadata"].get("uid")
    owned = [
        rs
        for rs in replica_sets
        if any(
            ref.get("uid") == uid and ref.get("kind") == "Deployment"
            for ref in rs["metadata"].get("ownerReferences", [])
        )
    ]
    current = _revision(deployment)
    by_revision = {_revision(rs): rs for rs in owned}
    if to_revision is None:
        older = sorted(r for r in by_revision if 0 < r < current)
        if not older:
            raise KitError(
                f"{name}: no previous revision to roll back to (revision {current} is the oldest kept)",
                NOT_FOUND,
            )
        target = older[-1]
    else:
        if to_revision not in by_revision:
            known = ", ".join(str(r) for r in sorted(by_revision)) or "none"
            raise KitError(f"{name}: no revision {to_revision} (kept: {known})", NOT_FOUND)
        target = to_revision
    template = copy.deepcopy(by_revision[target]["spec"]["template"])
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    if template == _without_hash(deployment["spec"]["template"]):
        raise KitError(
            f"{name}: revision {target} has the running template already: nothing to roll back", USAGE
        )
    annotations = {
        k: v for k, v in deployment["metadata"].get("annotations", {}).items() if k in SKIPPED_ANNOTATIONS
    }
    annotations.update(
        {
            k: v
            for k, v in by_revision[target]["metadata"].get("annotations", {}).items()
            if k not in SKIPPED_ANNOTATIONS
        }
    )
    patch = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    return Plan(name, current, target, _image(deployment["spec"]["template"]), _image(template), patch)


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(template)
    clean.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    return clean


def wait_for_rollouts(
    cluster: kube.Cluster, namespace: str, names: list[str], timeout: float
) -> list[dict[str, Any]]:
    """Poll until every Deployment's rollout is complete; KitError when stalled or timed out."""
    deadline = time.monotonic() + timeout
    with output.progress("waiting for the rollout") as bar:
        while True:
            states = []
            for name in names:
                deployment = cluster.call(
                    f"deployment {name}", cluster.apps.read_namespaced_deployment, name, namespace
                )
                states.append(deployment)
            summary = ", ".join(
                f"{d['metadata']['name']} {d.get('status', {}).get('updatedReplicas', 0)}/"
                f"{d.get('spec', {}).get('replicas', 1)} updated, "
                f"{d.get('status', {}).get('availableReplicas', 0)} available ({rollout_state(d)})"
                for d in states
            )
            bar.update(summary)
            if any(rollout_state(d) == "stalled" for d in states):
                raise KitError(f"rollout stalled (progress deadline exceeded): {summary}", FAILED)
            if all(rollout_state(d) == "complete" for d in states):
                return states
            if time.monotonic() > deadline:
                raise KitError(f"rollout not complete after {timeout:.0f}s: {summary}", FAILED)
            time.sleep(POLL_SECONDS)


def run(args: argparse.Namespace) -> int:
    from kit.k8s_overlays import API_DEPLOYMENT, SERVICE, WORKER_DEPLOYMENT

    target = envs.resolve(args.env, args.namespace)
    cluster = kube.connect(args.context, args.kubeconfig)
    cluster.require_namespace(target.namespace)
    replica_sets = cluster.call(
        "replicasets",
        cluster.apps.list_namespaced_replica_set,
        target.namespace,
        label_selector=f"app.kubernetes.io/name={SERVICE}",
    ).get("items", [])
    plans = []
    for name in (API_DEPLOYMENT, WORKER_DEPLOYMENT):
        deployment = cluster.call(
            f"deployment {name}", cluster.apps.read_namespaced_deployment, name, target.namespace
        )
        plans.append(plan(deployment, replica_sets, args.to_revision))
    for p in plans:
        output.note(
            f"{p.deployment}: revision {p.from_revision} ({p.from_image}) -> "
            f"revision {p.to_revision} ({p.to_image})"
        )
    output.confirm(f"roll back {target.namespace} in context {cluster.context!r}?", args.yes)
    for p in plans:
        cluster.call(
            f"patch deployment {p.deployment}",
            cluster.apps.patch_namespaced_deployment,
            p.deployment,
            target.namespace,
            p.patch,
            _content_type="application/json-patch+json",
        )
    states = wait_for_rollouts(cluster, target.namespace, [p.deployment for p in plans], args.timeout)
    result = [
        {
            "deployment": p.deployment,
            "from_revision": p.from_revision,
            "to_revision": p.to_revision,
            "image": p.to_image,
        }
        for p in plans
    ]
    if args.json:
        output.emit_json({"namespace": target.namespace, "rolled_back": result, "complete": True})
    else:
        for d in states:
            output.line(
                f"{d['metadata']['name']}: rolled back, {d['status'].get('availableReplicas', 0)} available"
            )
        output.line(
            "record it in git: revert the promotion commit, or the next apply restores the newer image"
        )
    return OK

"""checkov owns pod security, resources, image tags and probes (kit/k8s_checks.py does not repeat
them): every rendered overlay, a digest-pinned prod, the in-cluster load test and the pods the kit
starts at run time pass it, and deliberately broken copies of k8s/ fail it, each with the finding
that says why (the table below, in the style of test_k8s_negative.py).

One checkov run covers all of them (it takes seconds to start); see kit/checkov_scan.py for the
isolated environment and the checks skipped everywhere, with their reasons.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from kit import checkov_scan, k8s_checks, k8s_overlays
from kit.checkov_scan import DIGEST_CHECK, Finding
from kit.cli.db_shell import pod_manifest
from kit.cli.dead_letters import job_manifest
from kit.k8s_checks import Obj
from kit.paths import K8S, RUNBOOKS
from tests.k8s.support import OVERLAYS, replace_once

PINNED = "prod-pinned"
API = "base/api/deployment.yaml"
WORKER = "base/worker/deployment.yaml"
RELEASE = "overlays/prod/release.yaml"
API_POD = "Deployment.reference-service-prod.reference-service-api"
WORKER_POD = "Deployment.reference-service-prod.reference-service-worker"

# The API container's own securityContext (the init container's has the same lines).
API_CONTEXT = "                seconds: 5\n          securityContext:\n            runAsNonRoot: true\n"

# (what is broken, file under k8s/, exact text, replacement, the finding on the prod overlay)
BREAKAGES = [
    (
        "root user",
        API,
        f"{API_CONTEXT}            runAsUser: 10001\n",
        f"{API_CONTEXT.replace('true', 'false')}            runAsUser: 0\n",
        f"CKV_K8S_23 Minimize the admission of root containers: {API_POD}",
    ),
    (
        "low user id",
        API,
        f"{API_CONTEXT}            runAsUser: 10001\n",
        f"{API_CONTEXT}            runAsUser: 999\n",
        f"CKV_K8S_40 Containers should run as a high UID to avoid host conflict: {API_POD}",
    ),
    (
        "missing readiness probe",
        API,
        "          readinessProbe:\n",
        "          readinessProbe_removed:\n",
        f"CKV_K8S_9 Readiness Probe Should be Configured: {API_POD}",
    ),
    (
        "missing liveness probe on the worker",
        WORKER,
        "          livenessProbe:\n",
        "          livenessProbe_removed:\n",
        f"CKV_K8S_8 Liveness Probe Should be Configured: {WORKER_POD}",
    ),
    (
        "latest tag",
        RELEASE,
        "newTag: 0.1.0",
        "newTag: latest",
        f"CKV_K8S_14 Image Tag should be fixed - not latest or blank: {API_POD}",
    ),
    (
        "privilege escalation in the init container",
        API,
        "            allowPrivilegeEscalation: false\n",
        "            allowPrivilegeEscalation: true\n",
        f"CKV_K8S_20 Containers should not run with allowPrivilegeEscalation: {API_POD}",
    ),
    (
        "privileged container",
        API,
        "            allowPrivilegeEscalation: false\n",
        "            allowPrivilegeEscalation: false\n            privileged: true\n",
        f"CKV_K8S_16 Container should not be privileged: {API_POD}",
    ),
    (
        "capabilities kept",
        WORKER,
        "              drop: [ALL]\n",
        "              drop: [NET_RAW]\n",
        f"CKV_K8S_37 Minimize the admission of containers with capabilities assigned: {WORKER_POD}",
    ),
    (
        "capability added",
        WORKER,
        "              drop: [ALL]\n",
        "              drop: [ALL]\n              add: [SYS_ADMIN]\n",
        f"CKV_K8S_25 Minimize the admission of containers with added capability: {WORKER_POD}",
    ),
    (
        "writable root filesystem",
        WORKER,
        "            readOnlyRootFilesystem: true\n",
        "            readOnlyRootFilesystem: false\n",
        f"CKV_K8S_22 Use read-only filesystem for containers where possible: {WORKER_POD}",
    ),
    (
        "seccomp unconfined",
        WORKER,
        "type: RuntimeDefault",
        "type: Unconfined",
        "CKV_K8S_31 Ensure that the seccomp profile is set to docker/default or runtime/default: "
        + WORKER_POD,
    ),
    (
        "host network",
        API,
        "      automountServiceAccountToken: false\n",
        "      automountServiceAccountToken: false\n      hostNetwork: true\n",
        f"CKV_K8S_19 Containers should not share the host network namespace: {API_POD}",
    ),
    (
        "host port",
        API,
        "              containerPort: 8000\n",
        "              containerPort: 8000\n              hostPort: 8000\n",
        f"CKV_K8S_26 Do not specify hostPort unless absolutely necessary: {API_POD}",
    ),
    (
        "no limits in the init container",
        API,
        "            limits: {cpu: 500m, memory: 192Mi}\n",
        "",
        f"CKV_K8S_13 Memory limits should be set: {API_POD}",
    ),
    (
        "service-account token mounted",
        API,
        "automountServiceAccountToken: false",
        "automountServiceAccountToken: true",
        f"CKV_K8S_38 Ensure that Service Account Tokens are only mounted where necessary: {API_POD}",
    ),
]
# Findings expected outside the breakages, each with its reason. The committed overlays carry
# version tags; the release job pins the digest it promotes (`kit.k8s_overlays pin-image`).
EXPECTED_FINDINGS = {
    **{overlay: {DIGEST_CHECK} for overlay in OVERLAYS},
    PINNED: set(),
    # Locust's official image runs as its own uid 1000; its pods hold no secret and no data.
    "loadtest": {DIGEST_CHECK, "CKV_K8S_40"},
    # The one-off pods of kit db-shell and the runbook procedure: the postgres image's own uid
    # (999, 70), nothing to probe in a shell a person opens, the namespace given at apply time.
    "kit-db-shell": {DIGEST_CHECK, "CKV_K8S_40", "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_21"},
    "runbook-procedures": {DIGEST_CHECK, "CKV_K8S_40", "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_21"},
    # kit dead-letters' Job runs the worker's image (by tag, as deployed) in the namespace it is sent to.
    "kit-dead-letters": {DIGEST_CHECK, "CKV_K8S_21"},
}


def _broken(index: int) -> str:
    return f"broken-{index}"


@pytest.fixture(scope="module")
def findings(
    rendered: dict[str, list[Obj]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Finding]]:
    scan_dir = tmp_path_factory.mktemp("checkov")
    scratch = tmp_path_factory.mktemp("k8s-copies")
    variants: dict[str, list[Obj]] = dict(rendered)
    shutil.copytree(K8S, scratch / PINNED)
    k8s_overlays.pin_image(scratch / PINNED / "overlays" / "prod", "sha256:" + "ab" * 32)
    variants[PINNED] = k8s_checks.render(scratch / PINNED / "overlays" / "prod")

    def broken(index: int) -> list[Obj]:
        _, file, old, new, _ = BREAKAGES[index]
        copy = scratch / _broken(index)
        shutil.copytree(K8S, copy)
        replace_once(copy / file, old, new)
        # Only the workloads: what the breakages touch, and less for checkov to read.
        return [t.owner for t in k8s_checks.pod_templates(k8s_checks.render(copy / "overlays" / "prod"))]

    with ThreadPoolExecutor(max_workers=2) as pool:  # kubectl kustomize takes a second each
        for index, objects in enumerate(pool.map(broken, range(len(BREAKAGES)))):
            variants[_broken(index)] = objects
    variants["loadtest"] = k8s_checks.render(K8S / "loadtest")
    variants["kit-db-shell"] = [pod_manifest("kit-db-shell-someone-abc123", write=False)]
    worker = k8s_checks.find(rendered["prod"], "Deployment", "reference-service-worker")
    assert worker is not None
    variants["kit-dead-letters"] = [job_manifest(worker, "kit-dead-letters-list-abc", ["dead-letters"], 300)]
    variants["runbook-procedures"] = [
        obj
        for path in sorted((RUNBOOKS / "procedures").glob("*.yaml"))
        for obj in yaml.safe_load_all(path.read_text())
        if obj
    ]
    for name, objects in variants.items():
        (scan_dir / name).mkdir()
        (scan_dir / name / "rendered.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    by_variant: dict[str, list[Finding]] = {name: [] for name in variants}
    for finding in checkov_scan.scan(scan_dir):
        by_variant[Path(finding.file).parts[-2]].append(finding)
    return by_variant


@pytest.mark.parametrize("variant", sorted(EXPECTED_FINDINGS))
def test_only_the_expected_checks_fail(findings: dict[str, list[Finding]], variant: str) -> None:
    unexpected = [str(f) for f in findings[variant] if f.check_id not in EXPECTED_FINDINGS[variant]]
    assert unexpected == []
    # Each expectation is needed: one that no longer fails must leave the list.
    assert {f.check_id for f in findings[variant]} == EXPECTED_FINDINGS[variant]


@pytest.mark.parametrize(
    ("index", "broken", "message"),
    [(index, broken, message) for index, (broken, _, _, _, message) in enumerate(BREAKAGES)],
    ids=[b[0] for b in BREAKAGES],
)
def test_checkov_catches(findings: dict[str, list[Finding]], index: int, broken: str, message: str) -> None:
    messages = [f"{f.check_id} {f.name}: {f.resource}" for f in findings[_broken(index)]]
    assert message in messages, f"{broken}: got {messages}"

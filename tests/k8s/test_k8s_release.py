"""The release and preview steps CI runs, shown working on scratch copies of k8s/."""

from __future__ import annotations

import re
from pathlib import Path

from kit import k8s_checks, k8s_overlays
from kit.k8s_checks import of_kind
from kit.paths import K8S
from tests.k8s.support import CONFIG, expectations

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_release_pins_the_promoted_digest(k8s_copy: Path) -> None:
    """`python -m kit.k8s_overlays pin-image prod <digest>` (what `kustomize edit set image` does)."""
    overlay = k8s_copy / "overlays" / "prod"
    assert k8s_overlays.main(["pin-image", str(overlay), DIGEST]) == 0
    objects = k8s_checks.render(overlay)
    images = {
        container["image"]
        for deployment in of_kind(objects, "Deployment")
        for key in ("containers", "initContainers")
        for container in deployment["spec"]["template"]["spec"][key]
    }
    tag = CONFIG.get("prod").image_tag
    assert images == {f"{CONFIG.image_repository}:{tag}@{DIGEST}"}
    assert k8s_checks.policy_violations(objects, expectations("prod")) == []
    assert k8s_checks.schema_errors(objects, k8s_checks.SUPPORTED_VERSIONS[-1]) == []


def test_no_digest_is_committed() -> None:
    """Digests are pinned by the release job on its checkout, never committed (no placeholders)."""
    committed = [path for path in K8S.rglob("*.yaml") if re.search(r"sha256:", path.read_text())]
    assert committed == []


def test_preview_for_a_pull_request(k8s_copy: Path) -> None:
    """`python -m kit.k8s_overlays preview --pr 123`: namespace reference-service-pr-123, its own host."""
    assert k8s_overlays.main(["preview", "--pr", "123", "--k8s-dir", str(k8s_copy)]) == 0
    objects = k8s_checks.render(k8s_copy / "overlays" / "preview")
    expected = expectations(
        "preview", namespace="reference-service-pr-123", host="pr-123.preview.example.com"
    )
    assert k8s_checks.policy_violations(objects, expected) == []
    assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"} == {
        "reference-service-pr-123"
    }
    namespace = of_kind(objects, "Namespace")[0]["metadata"]
    assert namespace["name"] == "reference-service-pr-123"
    assert namespace["labels"]["app.kubernetes.io/instance"] == "reference-service-pr-123"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # The committed placeholder is untouched.
    assert (
        "namespace: reference-service-pr-0\n"
        in (K8S / "overlays" / "preview" / "kustomization.yaml").read_text()
    )

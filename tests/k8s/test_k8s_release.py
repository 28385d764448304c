"""The release and preview steps CI runs, shown working on scratch copies of k8s/."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kit import k8s_checks, k8s_overlays, render
from kit.k8s_checks import Obj, of_kind
from kit.k8s_overlays import PREVIEW_EXPIRES_LABEL, PREVIEW_PR_LABEL
from kit.paths import K8S
from tests.k8s.support import CONFIG, expectations

DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "fedcba9876543210" * 4


def _images(objects: list[Obj]) -> set[str]:
    return {
        container["image"]
        for deployment in of_kind(objects, "Deployment")
        for key in ("containers", "initContainers")
        for container in deployment["spec"]["template"]["spec"][key]
    }


def test_release_pins_the_promoted_digest(k8s_copy: Path) -> None:
    """`python -m kit.k8s_overlays pin-image prod <digest>` writes release.yaml, which is committed."""
    overlay = k8s_copy / "overlays" / "prod"
    assert k8s_overlays.main(["pin-image", str(overlay), DIGEST]) == 0
    assert f"digest: {DIGEST}" in (overlay / "release.yaml").read_text()
    objects = k8s_checks.render(overlay)
    tag = CONFIG.get("prod").image_tag
    assert _images(objects) == {f"{CONFIG.image_repository}:{tag}@{DIGEST}"}
    assert k8s_checks.policy_violations(objects, expectations("prod")) == []
    assert k8s_checks.schema_errors(objects, k8s_checks.SUPPORTED_VERSIONS[-1]) == []


def test_regenerating_keeps_the_pinned_digest_while_the_tag_holds(k8s_copy: Path) -> None:
    """Git says what runs: `make generate-k8s` after a release leaves the pipeline's digest alone."""
    overlay = k8s_copy / "overlays" / "prod"
    k8s_overlays.pin_image(overlay, DIGEST)
    outputs = k8s_overlays.render_all(k8s_dir=k8s_copy)
    assert render.stale_outputs(outputs) == []
    assert f"digest: {DIGEST}" in outputs[overlay / "release.yaml"]


def test_a_new_tag_drops_the_digest_of_the_old_one(k8s_copy: Path) -> None:
    overlay = k8s_copy / "overlays" / "prod"
    k8s_overlays.pin_image(overlay, DIGEST)
    bumped = CONFIG.get("prod").model_copy(update={"image_tag": "0.2.0"})
    release = k8s_overlays.release_for(bumped, CONFIG.image_repository, overlay)
    assert (release.tag, release.digest) == ("0.2.0", None)


def test_committed_digests_live_only_in_release_files() -> None:
    """The pipeline commits digests to overlays/<env>/release.yaml, nowhere else, well formed."""
    for path in K8S.rglob("*.yaml"):
        digests = re.findall(r"sha256:[0-9a-z]*", path.read_text())
        if path.name == "release.yaml":
            assert all(k8s_overlays.DIGEST.match(d) for d in digests), path
        else:
            assert digests == [], path


def test_preview_for_a_pull_request(k8s_copy: Path) -> None:
    """`preview --pr 123 --image <repo>@<digest>`: the PR's own build, its namespace, quota, expiry."""
    image = f"{CONFIG.image_repository}@{DIGEST}"
    now = 1_800_000_000
    k8s_overlays.render_preview(123, k8s_copy, image, now=now)
    objects = k8s_checks.render(k8s_copy / "overlays" / "preview")
    expected = expectations(
        "preview", namespace="reference-service-pr-123", host="pr-123.preview.example.com", version="pr-123"
    )
    assert k8s_checks.policy_violations(objects, expected) == []
    assert k8s_checks.schema_errors(objects, k8s_checks.SUPPORTED_VERSIONS[-1]) == []
    assert _images(objects) == {image}
    namespaces = {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"}
    assert namespaces == {"reference-service-pr-123"}
    namespace = of_kind(objects, "Namespace")[0]["metadata"]
    assert namespace["name"] == "reference-service-pr-123"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    ttl = CONFIG.get("preview").preview_ttl_hours
    assert ttl is not None
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels[PREVIEW_PR_LABEL] == "123", obj["metadata"]["name"]
        assert labels[PREVIEW_EXPIRES_LABEL] == str(now + ttl * 3600), obj["metadata"]["name"]
    # Nobody is paged for a pull request, and it cannot grow past its quota.
    assert of_kind(objects, "PrometheusRule") == []
    assert len(of_kind(objects, "ResourceQuota")) == 1
    assert len(of_kind(objects, "LimitRange")) == 1
    # The committed placeholder is untouched, and is already expired if applied by mistake.
    committed = yaml.safe_load((K8S / "overlays" / "preview" / "kustomization.yaml").read_text())
    assert committed["namespace"] == "reference-service-pr-0"
    assert committed["labels"][1]["pairs"] == {PREVIEW_PR_LABEL: "0", PREVIEW_EXPIRES_LABEL: "0"}

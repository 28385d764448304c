"""checkov's Kubernetes checks on every rendered overlay, a digest-pinned prod and a broken copy.

One checkov run covers all of them (it takes seconds to start); see kit/checkov_scan.py for the
isolated environment and the skipped checks with their reasons.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from kit import checkov_scan, k8s_checks, k8s_overlays
from kit.checkov_scan import DIGEST_CHECK, Finding
from kit.k8s_checks import Obj
from kit.paths import K8S
from tests.k8s.support import OVERLAYS

PINNED = "prod-pinned"
BROKEN = "prod-root"


@pytest.fixture(scope="module")
def findings(
    rendered: dict[str, list[Obj]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Finding]]:
    scan_dir = tmp_path_factory.mktemp("checkov")
    variants = dict(rendered)
    scratch = tmp_path_factory.mktemp("k8s-copies")
    for name in (PINNED, BROKEN):
        shutil.copytree(K8S, scratch / name)
    k8s_overlays.pin_image(scratch / PINNED / "overlays" / "prod", "sha256:" + "ab" * 32)
    variants[PINNED] = k8s_checks.render(scratch / PINNED / "overlays" / "prod")
    api = scratch / BROKEN / "base" / "api" / "deployment.yaml"
    api.write_text(api.read_text().replace("runAsNonRoot: true", "runAsNonRoot: false").replace("10001", "0"))
    variants[BROKEN] = k8s_checks.render(scratch / BROKEN / "overlays" / "prod")
    for name, objects in variants.items():
        (scan_dir / name).mkdir()
        (scan_dir / name / "rendered.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    by_variant: dict[str, list[Finding]] = {name: [] for name in variants}
    for finding in checkov_scan.scan(scan_dir):
        by_variant[Path(finding.file).parts[-2]].append(finding)
    return by_variant


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_committed_overlays_fail_only_the_digest_check(
    findings: dict[str, list[Finding]], overlay: str
) -> None:
    unexpected = [str(f) for f in findings[overlay] if f.check_id != DIGEST_CHECK]
    assert unexpected == []
    # Tags, not digests, are committed: the release pins the digest (next test).
    assert {f.check_id for f in findings[overlay]} == {DIGEST_CHECK}


def test_pinned_release_passes_every_check(findings: dict[str, list[Finding]]) -> None:
    assert [str(f) for f in findings[PINNED]] == []


def test_checkov_catches_a_root_container(findings: dict[str, list[Finding]]) -> None:
    root_checks = {"CKV_K8S_23", "CKV_K8S_40"}  # root containers admitted / low UID
    caught = {f.check_id for f in findings[BROKEN] if "reference-service-api" in f.resource}
    assert root_checks <= caught, sorted(caught)

"""infra/previews.py, the one preview driver (behind `kit preview` and `make preview*`), against the
stand-in `pulumi` of tests/cli that records its arguments. kit's front end: tests/cli/test_preview.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra import previews
from kit.paths import ROOT
from tests.cli.pulumi_standin import PulumiStandIn, copy_pulumi_project

IMAGE = "ghcr.io/example/reference-service@sha256:" + "c" * 64


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_pulumi_project(tmp_path)


def standin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stacks: dict[str, dict[str, object]]
) -> PulumiStandIn:
    fake = PulumiStandIn(tmp_path / "bin", {"pr": {"config": {}}, "dev": {"config": {}}, **stacks})
    monkeypatch.setenv("PATH", fake.path_env())
    return fake


def make(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`make` in the repository with ``args``, output captured."""
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=300)


def test_importing_the_driver_loads_no_pulumi_sdk() -> None:
    """kit imports infra.previews; the kit image and a kit-only venv have no Pulumi SDK."""
    code = (
        "import sys, infra.previews, kit.cli.preview\n"
        "loaded = sorted(m for m in sys.modules if m == 'pulumi' or m.startswith(('pulumi.', 'pulumi_')))\n"
        "print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_open_renders_the_overlay_for_the_pr_and_puts_every_committed_file_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    fake = standin(tmp_path, monkeypatch, {})
    overlay = project / "k8s" / "overlays" / "preview"
    # A file the render writes that the committed overlay lacks must not stay behind either.
    (overlay / "env-resources.yaml").unlink()
    committed = {p.name: p.read_text() for p in overlay.iterdir()}
    opened = previews.open_preview(previews.PulumiCli(project), 42, IMAGE)
    assert (opened.stack, opened.url, opened.image) == ("pr-42", "https://pr-42.preview.example.com", IMAGE)
    assert fake.stacks["pr-42"]["deployedNamespace"] == "reference-service-pr-42"
    assert fake.stacks["pr-42"]["config"]["reference-platform:image"] == IMAGE  # type: ignore[index]
    assert {p.name: p.read_text() for p in overlay.iterdir()} == committed


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("ghcr.io/example/reference-service:latest", "is not registry/repository:tag (not latest)"),
        ("ghcr.io/example/reference-service:0.2.0", "must look like <repository>@sha256:"),
        ("ghcr.io/other/service@sha256:" + "c" * 64, "is not from ghcr.io/example/reference-service"),
    ],
)
def test_open_runs_only_a_build_by_digest_from_the_configured_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path, image: str, message: str
) -> None:
    fake = standin(tmp_path, monkeypatch, {})
    with pytest.raises(previews.BadInput, match=f"^--image: .*{re.escape(message)}"):
        previews.open_preview(previews.PulumiCli(project), 3, image)
    assert fake.calls == []


def test_a_pull_request_number_the_program_would_refuse_is_refused_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    fake = standin(tmp_path, monkeypatch, {})
    with pytest.raises(previews.BadInput, match="between 1 and 9999999, got 12345678"):
        previews.open_preview(previews.PulumiCli(project), 12345678, IMAGE)
    assert fake.calls == []


def test_sweep_closes_only_previews_past_their_expires_at_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    now = 1_800_000_000
    fake = standin(
        tmp_path,
        monkeypatch,
        {
            "staging": {"config": {}, "outputs": {"expiresAt": now - 1}},  # not a preview
            "pr-1": {"config": {}, "outputs": {"createdAt": now - 90000, "expiresAt": now - 3600}},
            "pr-2": {"config": {}, "outputs": {"createdAt": now - 600, "expiresAt": now + 7200}},
            "pr-3": {"config": {}, "outputs": {}},  # never deployed
            "pr-5": {"config": {}, "outputs": {"expiresAt": now}},  # expires this second
        },
    )
    result = previews.sweep(previews.PulumiCli(project), now)
    assert (result.expired, result.destroyed, result.failed, result.unknown) == (
        ["pr-1", "pr-5"],
        ["pr-1", "pr-5"],
        [],
        ["pr-3"],
    )
    assert sorted(fake.stacks) == ["dev", "pr", "pr-2", "pr-3", "staging"]
    destroyed = [c[2] for c in fake.calls if c[0] == "destroy"]
    assert destroyed == ["pr-1", "pr-5"]


def test_sweep_dry_run_destroys_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    fake = standin(tmp_path, monkeypatch, {"pr-1": {"config": {}, "outputs": {"expiresAt": 1}}})
    result = previews.sweep(previews.PulumiCli(project), 1_800_000_000, dry_run=True)
    assert (result.expired, result.destroyed) == (["pr-1"], [])
    assert "pr-1" in fake.stacks
    assert not any(c[0] == "destroy" or c[:2] == ["stack", "rm"] for c in fake.calls)


def test_make_preview_destroy_runs_kit_preview_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = standin(tmp_path, monkeypatch, {"pr-8": {"config": {}, "outputs": {}}})
    result = make("--no-print-directory", "preview-destroy", "PR=8")
    assert result.returncode == 0, result.stderr
    assert "preview pr-8: destroyed and removed" in result.stdout
    assert [c[:-3] for c in fake.calls if c[0] == "destroy" or c[:2] == ["stack", "rm"]] == [
        ["destroy", "--stack", "pr-8", "--yes", "--skip-preview"],
        ["stack", "rm", "pr-8", "--yes"],
    ]
    assert "pr-8" not in fake.stacks


def test_make_preview_needs_pr_and_image_and_calls_kit() -> None:
    result = make("--no-print-directory", "preview", "PR=8")
    assert result.returncode != 0
    assert "usage: make preview PR=<n> IMAGE=<ref>" in result.stdout + result.stderr
    dry = make("-n", "preview", "preview-sweep", "PR=8", f"IMAGE={IMAGE}", check=True)
    assert f".venv/bin/kit preview up --pr 8 --image {IMAGE}" in dry.stdout
    assert ".venv/bin/kit preview sweep" in dry.stdout


def test_pr_template_stack_file_is_what_previews_copy() -> None:
    template = yaml.safe_load((ROOT / "Pulumi.pr.yaml").read_text())["config"]
    assert template["reference-platform:devStack"].endswith("/reference-platform/dev")
    assert previews.IMAGE_KEY not in template  # set per pull request by kit preview up
    assert previews.IMAGE_KEY == "reference-platform:image"

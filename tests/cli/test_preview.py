"""`kit preview` (over infra/previews.py) with a stand-in `pulumi` on PATH that records its arguments."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.cli import errors
from tests.cli.conftest import Result
from tests.cli.pulumi_standin import PulumiStandIn, copy_pulumi_project

NOW = int(time.time())
IMAGE = "ghcr.io/example/reference-service@sha256:" + "a" * 64


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_pulumi_project(tmp_path)


@pytest.fixture
def pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PulumiStandIn:
    standin = PulumiStandIn(
        tmp_path / "bin",
        {
            "pr": {"config": {"reference-platform:devStack": "example-org/reference-platform/dev"}},
            "dev": {"config": {}, "outputs": {"serviceUrl": "https://dev.example.com"}},
            "pr-3": {  # deployed five days ago, expired two hours ago
                "config": {"reference-platform:image": IMAGE},
                "outputs": {
                    "serviceUrl": "https://pr-3.preview.example.com",
                    "createdAt": NOW - 5 * 86400,
                    "expiresAt": NOW - 7200,
                },
                "lastUpdate": "2026-11-29T04:00:00Z",
            },
            "pr-4": {"config": {}, "outputs": {}},  # created, never deployed
        },
    )
    monkeypatch.setenv("PATH", standin.path_env())
    return standin


def _common(call: list[str], project: Path) -> list[str]:
    """A call without the flags every call carries (checked once per call here)."""
    assert call[-3:] == ["--non-interactive", "--cwd", str(project)], call
    return call[:-3]


def test_up_sets_the_programs_image_key_and_deploys_the_overlay_rendered_for_the_pr(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path
) -> None:
    overlay = project / "k8s" / "overlays" / "preview"
    committed = {p.name: p.read_text() for p in overlay.iterdir()}
    before = int(time.time())
    result = kit("preview", "up", "--pr", "12", "--image", IMAGE, "--cwd", str(project), "--json")
    after = int(time.time()) + 1
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["url"] == "https://pr-12.preview.example.com"
    assert report["stack"] == "pr-12" and report["image"] == IMAGE
    # The program's expiry: the time of this `up` plus preview_ttl_hours (72).
    assert before + 72 * 3600 <= report["expires_at"] <= after + 72 * 3600
    assert before <= report["created_at"] <= after
    assert [_common(c, project) for c in pulumi.calls] == [
        ["stack", "ls", "--json"],
        ["stack", "init", "pr-12", "--copy-config-from", "pr"],
        ["config", "set", "--stack", "pr-12", "reference-platform:image", IMAGE],
        [
            "up",
            "--stack",
            "pr-12",
            "--yes",
            "--skip-preview",
            "--policy-pack",
            str(project / "infra" / "policy"),
        ],
        ["stack", "output", "--stack", "pr-12", "--json"],
    ]
    stack = pulumi.stacks["pr-12"]
    # The key infra/stack_config.py reads, next to the template's config.
    assert stack["config"] == {
        "reference-platform:devStack": "example-org/reference-platform/dev",
        "reference-platform:image": IMAGE,
    }
    # `up` deployed the overlay rendered for pull request 12; the committed placeholder is back.
    assert stack["deployedNamespace"] == "reference-service-pr-12"
    assert {p.name: p.read_text() for p in overlay.iterdir()} == committed

    # Again (a new push): the same stack, no init; the first deployment's time is kept.
    again = kit("preview", "up", "--pr", "12", "--image", IMAGE, "--cwd", str(project))
    assert again.code == 0, again.err
    assert "preview pr-12: https://pr-12.preview.example.com" in again.out
    expires_at = int(str(pulumi.stacks["pr-12"]["outputs"]["expiresAt"]))  # type: ignore[index]
    assert (
        f"at {datetime.fromtimestamp(expires_at, UTC):%Y-%m-%d %H:%M} UTC (up again to extend)" in again.out
    )
    assert not any(c[:2] == ["stack", "init"] for c in pulumi.calls[5:])
    assert pulumi.stacks["pr-12"]["outputs"]["createdAt"] == report["created_at"]  # type: ignore[index]


def test_up_refuses_an_image_not_built_by_digest_before_pulumi_runs(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path
) -> None:
    result = kit(
        "preview",
        "up",
        "--pr",
        "5",
        "--image",
        "ghcr.io/example/reference-service:latest",
        "--cwd",
        str(project),
    )
    assert result.code == errors.USAGE
    assert result.err.startswith("error: --image: 'ghcr.io/example/reference-service:latest' is not")
    assert len(result.err.strip().splitlines()) == 1
    assert pulumi.calls == []


def test_a_failed_up_is_one_line_and_the_overlay_is_restored(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = project / "k8s" / "overlays" / "preview" / "kustomization.yaml"
    committed = overlay.read_text()
    monkeypatch.setenv("PULUMI_STANDIN_FAIL", "up:pr-3")
    result = kit("preview", "up", "--pr", "3", "--image", IMAGE, "--cwd", str(project))
    assert result.code == errors.FAILED
    assert (
        result.err.strip().splitlines()[-1]
        == "error: pulumi up --stack failed (exit 255): see its output above"
    )
    assert "error: the cluster is unreachable" in result.err  # pulumi's own output, streamed
    assert overlay.read_text() == committed


def test_list_shows_age_and_expiry_from_the_stack_outputs(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path
) -> None:
    assert kit("preview", "up", "--pr", "12", "--image", IMAGE, "--cwd", str(project)).code == 0
    listed = kit("preview", "list", "--cwd", str(project), "--json")
    assert listed.code == 0, listed.err
    previews = {p["stack"]: p for p in json.loads(listed.out)}
    assert set(previews) == {"pr-3", "pr-4", "pr-12"}  # not the template `pr`, not `dev`
    assert previews["pr-3"]["expired"] is True and previews["pr-12"]["expired"] is False
    assert previews["pr-4"] == {
        "stack": "pr-4",
        "pull_request": 4,
        "url": None,
        "created_at": None,
        "expires_at": None,
        "last_update": None,
        "image": None,
        "expired": False,
    }
    human = kit("preview", "list", "--cwd", str(project))
    rows = {line.split("│")[1].strip(): line for line in human.out.splitlines() if "│ pr-" in line}
    assert "5d" in rows["pr-3"] and "EXPIRED 2h ago" in rows["pr-3"]
    # 72 h from the deployment a moment ago: under 3 days now.
    assert "in 2d" in rows["pr-12"] and "https://pr-12.preview.example.com" in rows["pr-12"]
    assert "never deployed" in rows["pr-4"]


def test_sweep_destroys_only_the_expired_previews(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path
) -> None:
    assert kit("preview", "up", "--pr", "12", "--image", IMAGE, "--cwd", str(project)).code == 0
    dry = kit("preview", "sweep", "--dry-run", "--cwd", str(project), "--json")
    assert json.loads(dry.out) == {
        "expired": ["pr-3"],
        "destroyed": [],
        "failed": [],
        "unknown": ["pr-4"],
        "dry_run": True,
    }
    assert "pr-3" in pulumi.stacks
    swept = kit("preview", "sweep", "--cwd", str(project))
    assert swept.code == 0, swept.err
    assert "1 expired preview(s); destroyed: pr-3" in swept.out
    assert "never deployed (no expiresAt, left alone): pr-4" in swept.out
    destructive = [_common(c, project) for c in pulumi.calls if c[0] == "destroy" or c[:2] == ["stack", "rm"]]
    assert destructive == [
        ["destroy", "--stack", "pr-3", "--yes", "--skip-preview"],
        ["stack", "rm", "pr-3", "--yes"],
    ]
    assert set(pulumi.stacks) == {"pr", "dev", "pr-4", "pr-12"}


def test_sweep_reports_a_failed_destroy_and_exits_non_zero(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_STANDIN_FAIL", "destroy:pr-3")
    result = kit("preview", "sweep", "--cwd", str(project), "--json")
    assert result.code == errors.FAILED
    assert json.loads(result.out)["failed"] == ["pr-3"]
    assert "error: pulumi destroy --stack failed (exit 255)" in result.err
    assert "pr-3" in pulumi.stacks


def test_down_asks_first_and_says_when_there_is_no_such_preview(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path
) -> None:
    missing = kit("preview", "down", "--pr", "99", "--yes", "--cwd", str(project))
    assert (missing.code, missing.err.strip()) == (errors.NOT_FOUND, "error: no preview stack pr-99")
    unconfirmed = kit("preview", "down", "--pr", "3", "--cwd", str(project))
    assert unconfirmed.code == errors.ABORTED and "pr-3" in pulumi.stacks
    done = kit("preview", "down", "--pr", "3", "--yes", "--cwd", str(project), "--json")
    assert done.code == 0 and json.loads(done.out) == {"destroyed": ["pr-3"]}
    assert "pr-3" not in pulumi.stacks


def test_stacks_qualified_by_organisation_are_found(
    kit: Callable[..., Result], tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pulumi Cloud lists `org/pr-3`: the preview is still pr-3, and is addressed by its full name."""
    standin = PulumiStandIn(tmp_path / "org-bin", {"pr-3": {"config": {}, "outputs": {}}}, org="example-org")
    monkeypatch.setenv("PATH", standin.path_env())
    done = kit("preview", "down", "--pr", "3", "--yes", "--cwd", str(project))
    assert done.code == 0, done.err
    assert ["destroy", "--stack", "example-org/pr-3", "--yes", "--skip-preview"] in [
        _common(c, project) for c in standin.calls
    ]
    assert standin.stacks == {}


def test_without_the_pulumi_cli_one_line_says_how_to_install_it(
    kit: Callable[..., Result], project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = kit("preview", "list", "--cwd", str(project))
    assert result.code == errors.SETUP
    assert result.err.strip() == (
        "error: the pulumi CLI is not installed: install it: curl -fsSL https://get.pulumi.com | sh "
        "(https://www.pulumi.com/docs/install/)"
    )


def test_without_a_pulumi_project(kit: Callable[..., Result], pulumi: PulumiStandIn, tmp_path: Path) -> None:
    result = kit("preview", "list", "--cwd", str(tmp_path))
    assert result.code == errors.SETUP
    assert (
        result.err.strip()
        == f"error: no Pulumi.yaml in {tmp_path}: pass --cwd <folder of the Pulumi project>"
    )

"""`kit preview` with a stand-in `pulumi` on PATH that records its arguments."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kit.cli import errors
from tests.cli.conftest import Result
from tests.cli.pulumi_standin import PulumiStandIn

NOW = int(time.time())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "Pulumi.yaml").write_text("name: reference-app\nruntime: python\n")
    return folder


@pytest.fixture
def pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PulumiStandIn:
    standin = PulumiStandIn(
        tmp_path / "bin",
        {
            "pr": {"config": {"reference-app:environment": "preview"}, "outputs": {}},
            "dev": {"config": {}, "outputs": {}},
            "pr-3": {
                "config": {
                    "kit:pr": "3",
                    "kit:createdAt": str(NOW - 5 * 86400),
                    "kit:expiresAt": str(NOW - 7200),
                },
                "outputs": {},
                "lastUpdate": "2026-11-27T10:00:00Z",
            },
        },
    )
    monkeypatch.setenv("PATH", standin.path_env())
    return standin


def _common(call: list[str], project: Path) -> list[str]:
    """A call without the flags every call carries (checked once per call here)."""
    assert call[-3:] == ["--non-interactive", "--cwd", str(project)], call
    return call[:-3]


def test_up_creates_the_stack_from_the_template_and_prints_the_url(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path
) -> None:
    image = "ghcr.io/example/reference-service@sha256:" + "a" * 64
    result = kit(
        "preview", "up", "--pr", "12", "--image", image, "--ttl", "2h", "--cwd", str(project), "--json"
    )
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["url"] == "https://pr-12.preview.example.com"
    assert report["stack"] == "pr-12" and report["image"] == image
    calls = [_common(c, project) for c in pulumi.calls]
    created_at = pulumi.stacks["pr-12"]["config"]["kit:createdAt"]
    expires_at = str(report["expires_at"])
    assert calls == [
        ["stack", "ls", "--json"],
        ["stack", "init", "pr-12", "--copy-config-from", "pr"],
        ["config", "set", "--stack", "pr-12", "kit:createdAt", created_at],
        ["config", "set", "--stack", "pr-12", "kit:pr", "12"],
        ["config", "set", "--stack", "pr-12", "kit:expiresAt", expires_at],
        ["config", "set", "--stack", "pr-12", "kit:image", image],
        ["up", "--stack", "pr-12", "--yes", "--skip-preview"],
        ["stack", "output", "--stack", "pr-12", "--json"],
    ]
    assert abs(int(expires_at) - int(created_at) - 7200) <= 2
    assert pulumi.stacks["pr-12"]["config"]["reference-app:environment"] == "preview"  # from Pulumi.pr.yaml

    # Again (a new push): the same stack, a later expiry, the creation time kept.
    again = kit("preview", "up", "--pr", "12", "--cwd", str(project))
    assert again.code == 0
    assert "preview pr-12: https://pr-12.preview.example.com" in again.out
    assert ["stack", "init", "pr-12", "--copy-config-from", "pr"] not in [
        _common(c, project) for c in pulumi.calls[8:]
    ]
    assert pulumi.stacks["pr-12"]["config"]["kit:createdAt"] == created_at


def test_list_shows_age_and_expiry_and_sweep_destroys_only_expired(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path
) -> None:
    assert kit("preview", "up", "--pr", "12", "--cwd", str(project)).code == 0
    listed = kit("preview", "list", "--cwd", str(project), "--json")
    assert listed.code == 0
    previews = {p["stack"]: p for p in json.loads(listed.out)}
    assert set(previews) == {"pr-3", "pr-12"}  # not the template `pr`, not `dev`
    assert previews["pr-3"]["expired"] is True and previews["pr-12"]["expired"] is False
    human = kit("preview", "list", "--cwd", str(project))
    assert "EXPIRED 2h ago" in human.out and "5d" in human.out and "in 2d" in human.out

    dry = kit("preview", "sweep", "--dry-run", "--cwd", str(project), "--json")
    assert json.loads(dry.out) == {"expired": ["pr-3"], "destroyed": [], "failed": [], "dry_run": True}
    assert "pr-3" in pulumi.stacks
    swept = kit("preview", "sweep", "--cwd", str(project))
    assert swept.code == 0
    assert "1 expired preview(s); destroyed: pr-3" in swept.out
    tail = [_common(c, project) for c in pulumi.calls[-2:]]
    assert tail == [
        ["destroy", "--stack", "pr-3", "--yes", "--skip-preview"],
        ["stack", "rm", "pr-3", "--yes"],
    ]
    assert set(pulumi.stacks) == {"pr", "dev", "pr-12"}


def test_sweep_reports_a_failed_destroy_and_exits_non_zero(
    kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_STANDIN_FAIL", "pr-3")
    result = kit("preview", "sweep", "--cwd", str(project), "--json")
    assert result.code == errors.FAILED
    assert json.loads(result.out)["failed"] == ["pr-3"]
    assert "error: pulumi destroy --stack failed (exit 255)" in result.err
    assert "pr-3" in pulumi.stacks


def test_down(kit: Callable[..., Result], pulumi: PulumiStandIn, project: Path) -> None:
    missing = kit("preview", "down", "--pr", "99", "--yes", "--cwd", str(project))
    assert (missing.code, missing.err.strip()) == (errors.NOT_FOUND, "error: no preview stack pr-99")
    unconfirmed = kit("preview", "down", "--pr", "3", "--cwd", str(project))
    assert unconfirmed.code == errors.ABORTED and "pr-3" in pulumi.stacks
    done = kit("preview", "down", "--pr", "3", "--yes", "--cwd", str(project))
    assert done.code == 0 and "pr-3" not in pulumi.stacks


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

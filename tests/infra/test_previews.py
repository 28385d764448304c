"""The preview wrappers and the sweeper, against a stand-in `pulumi` that records its arguments."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import previews
from kit.paths import K8S, ROOT

FAKE_PULUMI = textwrap.dedent(
    """\
    #!{python}
    # Stand-in for the Pulumi CLI: logs its arguments, answers from a JSON state file.
    import json, os, sys
    args = sys.argv[1:]
    state_path = os.environ["FAKE_PULUMI_STATE"]
    state = json.load(open(state_path))
    entry = {{"args": args}}
    overlay = os.environ.get("FAKE_PULUMI_OVERLAY")
    if args[0] == "up" and overlay:
        entry["overlay_namespace"] = open(overlay).read().split("namespace: ")[1].split()[0]
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\\n")
    def stack_arg():
        return args[args.index("--stack") + 1]
    if args[0] in state.get("fail", []):
        print("error: something went wrong", file=sys.stderr); sys.exit(255)
    if args[:2] == ["stack", "select"]:
        sys.exit(0 if args[2] in state["stacks"] else 255)
    if args[:2] == ["stack", "init"]:
        state["stacks"].append(args[2])
    if args[:2] == ["stack", "rm"]:
        state["stacks"].remove(args[2])
    if args[:2] == ["stack", "ls"]:
        print(json.dumps([{{"name": "example-org/" + name}} for name in state["stacks"]]))
    if args[:2] == ["stack", "output"]:
        value = state["outputs"].get(stack_arg(), {{}}).get(args[2])
        if value is None:
            print("error: current stack does not have output property", file=sys.stderr); sys.exit(255)
        print(json.dumps(value))
    json.dump(state, open(state_path, "w"))
    """
)
IMAGE = "ghcr.io/example/reference-service@sha256:" + "c" * 64


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI.format(python=sys.executable))
    script.chmod(0o755)
    log, state = tmp_path / "calls.jsonl", tmp_path / "state.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(state))

    class Fake:
        def configure(
            self,
            stacks: list[str],
            outputs: dict[str, dict[str, Any]] | None = None,
            fail: tuple[str, ...] = (),
        ) -> None:
            state.write_text(json.dumps({"stacks": stacks, "outputs": outputs or {}, "fail": list(fail)}))

        def calls(self) -> list[dict[str, Any]]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def commands(self) -> list[list[str]]:
            return [[a for a in c["args"] if a != "--non-interactive"] for c in self.calls()]

        def stacks(self) -> list[str]:
            return list(json.loads(state.read_text())["stacks"])

    fake = Fake()
    fake.configure(["dev", "pr"])
    return fake


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def test_open_creates_the_stack_sets_the_image_and_deploys_the_rendered_overlay(
    fake_pulumi: Any, k8s_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = k8s_copy / "overlays" / "preview" / "kustomization.yaml"
    committed = overlay.read_text()
    monkeypatch.setenv("FAKE_PULUMI_OVERLAY", str(overlay))
    fake_pulumi.configure(["dev", "pr"], {"pr-42": {"serviceUrl": "https://pr-42.preview.example.com"}})
    url = previews.open_preview(previews.PulumiCli(), 42, IMAGE, k8s_dir=k8s_copy)
    assert url == "https://pr-42.preview.example.com"
    assert fake_pulumi.commands() == [
        ["stack", "select", "pr-42"],
        ["stack", "init", "pr-42", "--copy-config-from", "pr"],
        ["config", "set", "reference-platform:image", IMAGE, "--stack", "pr-42"],
        ["up", "--yes", "--stack", "pr-42", "--policy-pack", str(ROOT / "infra" / "policy")],
        ["stack", "output", "serviceUrl", "--stack", "pr-42", "--json"],
    ]
    # `up` saw the overlay rendered for pull request 42; the committed placeholder is back.
    assert fake_pulumi.calls()[3]["overlay_namespace"] == "reference-service-pr-42"
    assert overlay.read_text() == committed


def test_open_again_reuses_the_stack(fake_pulumi: Any, k8s_copy: Path) -> None:
    fake_pulumi.configure(
        ["dev", "pr", "pr-42"], {"pr-42": {"serviceUrl": "https://pr-42.preview.example.com"}}
    )
    previews.open_preview(previews.PulumiCli(), 42, IMAGE, k8s_dir=k8s_copy)
    assert ["stack", "init", "pr-42", "--copy-config-from", "pr"] not in fake_pulumi.commands()


def test_a_failed_up_restores_the_overlay_and_says_what_failed(fake_pulumi: Any, k8s_copy: Path) -> None:
    overlay = k8s_copy / "overlays" / "preview" / "kustomization.yaml"
    committed = overlay.read_text()
    fake_pulumi.configure(["dev", "pr"], fail=("up",))
    with pytest.raises(
        previews.PreviewError,
        # `up` streams its own output (the error included) to the terminal.
        match=r"^pulumi up --yes --stack pr-9 .* failed \(exit 255\)$",
    ):
        previews.open_preview(previews.PulumiCli(), 9, IMAGE, k8s_dir=k8s_copy)
    assert overlay.read_text() == committed


def test_open_refuses_a_floating_image_before_calling_pulumi(fake_pulumi: Any, k8s_copy: Path) -> None:
    with pytest.raises(
        previews.PreviewError, match=r"--image: 'ghcr\.io/example/reference-service:latest' is not"
    ):
        previews.open_preview(
            previews.PulumiCli(), 3, "ghcr.io/example/reference-service:latest", k8s_dir=k8s_copy
        )
    assert fake_pulumi.calls() == []


def test_destroy_removes_resources_then_the_stack(fake_pulumi: Any) -> None:
    fake_pulumi.configure(["dev", "pr", "pr-5"])
    assert previews.main(["destroy", "--pr", "5"]) == 0
    assert fake_pulumi.commands() == [
        ["destroy", "--yes", "--stack", "pr-5"],
        ["stack", "rm", "pr-5", "--yes"],
    ]
    assert fake_pulumi.stacks() == ["dev", "pr"]


def test_sweep_destroys_only_expired_previews(fake_pulumi: Any, capsys: pytest.CaptureFixture[str]) -> None:
    now = 1_800_000_000
    fake_pulumi.configure(
        ["dev", "staging", "pr", "pr-1", "pr-2", "pr-3"],
        {"pr-1": {"expiresAt": now - 3600}, "pr-2": {"expiresAt": now + 7200}},  # pr-3 never deployed
    )
    assert previews.sweep(previews.PulumiCli(), now) == [1]
    assert fake_pulumi.stacks() == ["dev", "staging", "pr", "pr-2", "pr-3"]
    assert ["destroy", "--yes", "--stack", "pr-1"] in fake_pulumi.commands()
    assert not any(c[0] == "destroy" and "pr-2" in c for c in fake_pulumi.commands())
    assert capsys.readouterr().out.splitlines() == [
        "pr-1: expired 60 min ago: destroying",
        "pr-2: expires in 120 min: kept",
        "pr-3: no expiresAt output (never deployed?): left alone",
    ]


def test_sweep_dry_run_destroys_nothing(fake_pulumi: Any) -> None:
    fake_pulumi.configure(["pr-1"], {"pr-1": {"expiresAt": 1}})
    assert previews.main(["sweep", "--dry-run"]) == 0
    assert fake_pulumi.stacks() == ["pr-1"]
    assert not any(c[0] in ("destroy", "stack") and c[1:2] == ["rm"] for c in fake_pulumi.commands())


def test_missing_cli_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert previews.main(["sweep"]) == 1
    assert capsys.readouterr().err == (
        "error: the pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/iac/download-install/)\n"
    )


def test_make_preview_destroy_wraps_the_module(fake_pulumi: Any) -> None:
    fake_pulumi.configure(["pr-8"])
    result = subprocess.run(
        ["make", "--no-print-directory", "preview-destroy", "PR=8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert fake_pulumi.commands() == [
        ["destroy", "--yes", "--stack", "pr-8"],
        ["stack", "rm", "pr-8", "--yes"],
    ]


def test_make_preview_needs_pr_and_image() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "preview", "PR=8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "usage: make preview PR=<n> IMAGE=<ref>" in result.stdout + result.stderr
    dry = subprocess.run(
        ["make", "-n", "preview", "PR=8", f"IMAGE={IMAGE}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"-m infra.previews up --pr 8 --image {IMAGE}" in dry.stdout


def test_pr_template_stack_file_is_what_previews_copy() -> None:
    template = yaml.safe_load((ROOT / "Pulumi.pr.yaml").read_text())["config"]
    assert template["reference-platform:devStack"].endswith("/reference-platform/dev")
    assert "reference-platform:image" not in template  # set per pull request by make preview


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("ghcr.io/example/reference-service:0.2.0", "must look like <repository>@sha256:"),
        ("ghcr.io/other/service@sha256:" + "c" * 64, "is not from ghcr.io/example/reference-service"),
    ],
)
def test_open_runs_only_a_build_by_digest_from_the_configured_repository(
    fake_pulumi: Any, k8s_copy: Path, image: str, message: str
) -> None:
    with pytest.raises(previews.PreviewError, match=f"^--image: .*{re.escape(message)}"):
        previews.open_preview(previews.PulumiCli(), 3, image, k8s_dir=k8s_copy)
    assert fake_pulumi.calls() == []

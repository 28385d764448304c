"""The delivery pipeline cannot run here; these checks make sure it is at least correct.

- GitHub's workflow schema (vendored by check-jsonschema, so it runs offline), on every file;
- every `make` target and every `kit` command a step runs exists (Makefile, kit's parser);
- the job graph: needs point at jobs, the called workflow gets exactly its inputs, the same
  digest goes to staging and prod, prod waits for staging and runs in the protected environment,
  previews are destroyed on close and swept on a schedule.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit.cli import known_command
from kit.paths import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yaml"))
CHECK_JSONSCHEMA = ROOT / ".venv" / "bin" / "check-jsonschema"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
MAKE_TARGET = re.compile(r"^([A-Za-z0-9_-]+):", re.MULTILINE)


def _load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    document["on"] = document.pop(True)
    return document


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    # Proxies that lead nowhere: any attempt to download a schema would fail the check.
    offline = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        env=offline,
        check=False,
        timeout=120,
    )


def _run_lines() -> list[tuple[str, str]]:
    """(where, shell line) of every `run:` step, continuation lines joined, expressions neutralised."""
    lines = []
    for path in FILES:
        for job_name, job in _load(path)["jobs"].items():
            for step in job.get("steps", []):
                script = EXPRESSION.sub("$GHA", step.get("run", "")).replace("\\\n", " ")
                lines += [
                    (f"{path.name}:{job_name}", line.strip()) for line in script.splitlines() if line.strip()
                ]
    return lines


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema_offline(path: Path) -> None:
    result = _schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((WORKFLOWS / "delivery.yaml").read_text().replace("runs-on:", "run-on:", 1))
    result = _schema_check(broken)
    assert result.returncode == 1
    assert "run-on" in result.stdout


def test_every_make_target_exists() -> None:
    targets = set(MAKE_TARGET.findall((ROOT / "Makefile").read_text()))
    called = [
        (where, m) for where, line in _run_lines() for m in re.findall(r"\bmake\s+([a-z][a-z0-9_-]*)", line)
    ]
    assert {"venv", "lint", "test", "system-deps", "loadtest"} <= {target for _, target in called}
    assert [(where, target) for where, target in called if target not in targets] == []


def _kit_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for where, line in _run_lines():
        tokens = shlex.split(line)
        for index, token in enumerate(tokens):
            if token == "kit" or token.endswith("/kit"):
                argv = []
                for word in tokens[index + 1 :]:
                    if word in {">", "|", "&&", "||", ";"}:
                        break
                    argv.append(word)
                commands.append((where, argv))
    return commands


def test_every_kit_command_parses() -> None:
    commands = _kit_commands()
    used = {argv[0] if argv[0] != "preview" else f"preview {argv[1]}" for _, argv in commands}
    assert used == {"preview up", "preview down", "preview sweep", "smoke", "status"}
    assert [(where, argv) for where, argv in commands if not known_command(argv)] == []


def test_the_job_graph() -> None:
    delivery = _load(WORKFLOWS / "delivery.yaml")
    jobs = delivery["jobs"]
    for name, job in jobs.items():
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            assert need in jobs, f"{name} needs unknown job {need}"
    assert set(delivery["on"]) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert "closed" in delivery["on"]["pull_request"]["types"]
    assert "github.event.action == 'closed'" in jobs["preview-destroy"]["if"]
    assert "schedule" in jobs["preview-sweep"]["if"]
    # Pull requests: build -> preview -> load gate -> smoke.
    assert jobs["preview"]["needs"] == "build" and jobs["load-gate"]["needs"] == "preview"
    assert jobs["smoke"]["needs"] == ["preview", "load-gate"]
    # main: the same digest to staging, then to prod after staging, in the protected environment.
    promote = _load(WORKFLOWS / "promote.yaml")
    inputs = promote["on"]["workflow_call"]["inputs"]
    for name in ("staging", "prod"):
        job = jobs[name]
        assert job["uses"] == "./.github/workflows/promote.yaml"
        assert set(job["with"]) == set(inputs)
        assert job["with"]["digest"] == "${{ needs.build.outputs.digest }}"
        assert job["secrets"] == "inherit"
    assert jobs["prod"]["needs"] == ["build", "staging"]
    assert (jobs["staging"]["with"]["environment"], jobs["prod"]["with"]["environment"]) == (
        "staging",
        "production",
    )
    assert jobs["build"]["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"
    steps = promote["jobs"]["promote"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert 'pin-image "$DEPLOY_ENV" "${{ inputs.digest }}"' in runs
    assert "git push origin deployments" in runs  # the promoted digest recorded in git

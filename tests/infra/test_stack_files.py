"""Stack files hold account-specific values only: no secret, nothing environments.yaml already says."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.stack_config import PROJECT, SECRET_KEYS, StackSettings
from kit.paths import CONFIG, ROOT

STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))
ENVIRONMENTS: dict[str, Any] = yaml.safe_load((CONFIG / "environments.yaml").read_text())


def leaves(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [
            item
            for key, value in node.items()
            for item in leaves(value, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in leaves(value, f"{path}.{i}")]
    return [(path, node)]


def environment_of(stack_file: str) -> str:
    name = stack_file.removeprefix("Pulumi.").removesuffix(".yaml")
    return "preview" if name == "pr" else name


def test_the_stack_files_are_the_four_expected() -> None:
    assert [p.name for p in STACK_FILES] == [
        "Pulumi.dev.yaml",
        "Pulumi.pr.yaml",
        "Pulumi.prod.yaml",
        "Pulumi.staging.yaml",
    ]


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_no_secret_value_in_a_stack_file(path: Any) -> None:
    config = yaml.safe_load(path.read_text())["config"]
    for key, value in config.items():
        name = key.split(":", 1)[1]
        if name in SECRET_KEYS:
            assert isinstance(value, dict)
            assert set(value) == {"secure"}, f"{path.name}: {key} must be set with --secret"
        assert not any(word in name.lower() for word in ("password", "token", "secret")), key


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_stack_files_hold_only_the_projects_settings(path: Any) -> None:
    config = yaml.safe_load(path.read_text())["config"]
    own = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    known = {field.alias or name for name, field in StackSettings.model_fields.items()}
    assert set(own) <= known, set(own) - known
    assert {k.split(":", 1)[0] for k in config} <= {PROJECT, "aws"}


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_no_value_lives_in_both_places(path: Any) -> None:
    """A stack file repeats nothing of config/environments.yaml (its environment or the image)."""
    config = yaml.safe_load(path.read_text())["config"]
    env = ENVIRONMENTS["environments"][environment_of(path.name)]
    catalogue = leaves(env) + leaves(ENVIRONMENTS["image"], "image")
    catalogue_keys = {p.split(".")[-1] for p, _ in catalogue}
    catalogue_values = {str(v) for _, v in catalogue if not isinstance(v, bool) and len(str(v)) > 3}
    for key, value in leaves(config):
        name = key.split(":", 1)[-1].split(".")[0]
        assert name not in catalogue_keys, f"{path.name}: {key} is a setting of config/environments.yaml"
        assert str(value) not in catalogue_values, (
            f"{path.name}: {key}={value} repeats config/environments.yaml"
        )


def test_the_duplication_check_would_catch_a_repeated_value() -> None:
    env = ENVIRONMENTS["environments"]["prod"]
    values = {str(v) for _, v in leaves(env)}
    assert "reference-service-prod" in values  # the namespace: a stack file must not repeat it
    assert "db.m6g.large" in values


def test_the_project_file_runs_infra_with_the_uv_toolchain() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    assert project["main"] == "infra/"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv", "virtualenv": ".venv"}}
    assert (ROOT / project["main"] / "__main__.py").is_file()


def test_importing_the_program_creates_nothing() -> None:
    """No resource, no policy server at import time (a bare interpreter, no Pulumi engine at all)."""
    import subprocess
    import sys

    code = (
        "import infra, infra.program, infra.previews, infra.policy.policies, infra.components.app, "
        "infra.components.preview; print('imported')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, "imported"), result.stderr

"""Bad stack configuration fails before any resource is registered, one line per problem."""

from __future__ import annotations

from typing import Any

import pytest

from infra.stack_config import StackConfigError
from tests.infra.support import run_stack, stack_config


def failing(stack: str, config: dict[str, Any], secrets: dict[str, str] | None = None) -> list[str]:
    run = run_stack(stack, config=config, secrets=secrets)
    assert isinstance(run.error, StackConfigError), run.error
    assert run.resources == []  # nothing registered, not even a component
    message = str(run.error)
    assert message.startswith("invalid stack configuration:")
    assert "Traceback" not in message
    return run.error.problems


def test_every_problem_is_reported_at_once() -> None:
    config = stack_config("dev")
    config.pop("aws:region")
    config["reference-platform:budget"] = {"monthlyLimitUsd": -5, "recipients": ["not-an-address"]}
    config["reference-platform:replicas"] = "3"
    problems = failing("dev", config, secrets={})
    assert problems == [
        "reference-platform:budget.monthlyLimitUsd: Input should be greater than 0",
        "reference-platform:budget.recipients: not an e-mail address: not-an-address",
        "reference-platform:webhookUrl: is not set (pulumi config set --secret webhookUrl ...)",
        "reference-platform:replicas: is not a setting of this project "
        "(per-environment settings: config/environments.yaml)",
        "aws:region: is not set (pulumi config set aws:region <region>)",
    ]


def test_a_secret_in_plain_text_is_refused() -> None:
    config = {**stack_config("staging"), "reference-platform:webhookUrl": "https://hooks.example.test"}
    problems = failing("staging", config, secrets={})
    assert problems == [
        "reference-platform:webhookUrl: must be a secret (pulumi config set --secret webhookUrl ...)"
    ]


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("ghcr.io/example/reference-service:latest", False),
        ("reference-service:1.0", False),
        ("ghcr.io/example/reference-service", False),
        ("ghcr.io/example/reference-service:1.2.3", True),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/reference-service/prod@sha256:" + "0" * 64, True),
    ],
)
def test_image_must_name_one_build(image: str, ok: bool) -> None:
    config = {**stack_config("prod"), "reference-platform:image": image}
    run = run_stack("prod", config=config)
    if ok:
        assert run.error is None
    else:
        assert isinstance(run.error, StackConfigError)
        assert run.error.problems == [
            f"reference-platform:image: {image!r} is not registry/repository:tag (not latest) "
            "or registry/repository@sha256:<digest>"
        ]


def test_preview_needs_the_dev_stack_and_an_image() -> None:
    config = stack_config("pr-7")
    config.pop("reference-platform:devStack")
    assert failing("pr-7", config) == [
        "reference-platform:devStack: previews need the dev stack (org/reference-platform/dev)",
        "reference-platform:image: previews deploy the pull request's image (make preview IMAGE=...)",
    ]


def test_environment_stacks_do_not_read_another_stack() -> None:
    config = {**stack_config("prod"), "reference-platform:devStack": "org/reference-platform/dev"}
    assert failing("prod", config) == [
        "reference-platform:devStack: only previews (pr-<n>) read another stack"
    ]


@pytest.mark.parametrize(
    ("stack", "problem"),
    [
        ("pr", "stack pr is the template previews are created from: deploy pr-<n> (make preview)"),
        ("qa", "stack qa: expected one of dev, staging, prod or pr-<n>"),
        ("pr-0", "stack pr-0: expected one of dev, staging, prod or pr-<n>"),
    ],
)
def test_unknown_stacks_are_refused(stack: str, problem: str) -> None:
    assert failing(stack, stack_config("dev")) == [problem]


def test_config_handed_over_in_the_environment_is_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The language host may pass config as PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS instead."""
    import json

    from tests.infra.support import TEST_SECRETS, as_runtime_config

    values = {**stack_config("dev"), **{f"reference-platform:{k}": v for k, v in TEST_SECRETS.items()}}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(as_runtime_config(values)))
    monkeypatch.setenv(
        "PULUMI_CONFIG_SECRET_KEYS", json.dumps([f"reference-platform:{k}" for k in TEST_SECRETS])
    )
    run = run_stack("dev", config={}, secrets={})
    assert run.error is None
    assert run.outputs["serviceUrl"] == "https://api.dev.example.com"

"""What a stack file may hold, validated before any resource is registered.

Stack files (``Pulumi.<stack>.yaml``) hold only what is specific to one cloud account (region,
owner, budget) and secrets. Everything that differs between environments lives in
config/environments.yaml (kit/environments.py). A bad stack file fails ``pulumi up`` with one
line per problem, each naming the key, and nothing is created.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from kit import environments
from kit.environments import Environment, EnvironmentsConfig, EnvironmentsError

PROJECT = "reference-platform"
ENVIRONMENT_STACKS = ("dev", "staging", "prod")
PREVIEW_STACK = re.compile(r"^pr-(?P<number>[1-9][0-9]{0,6})$")
# Keys that must be set with `pulumi config set --secret` (never plain text in a stack file).
SECRET_KEYS = frozenset({"webhookUrl", "webhookSigningSecret"})
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# An image that names one build: a tag other than latest, or a digest.
PINNED_IMAGE = re.compile(
    r"^[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+(?::(?!latest$)[\w.-]+|@sha256:[0-9a-f]{64})$"
)


def image_problem(image: str) -> str | None:
    """Why `image` does not name one build, or None when it does."""
    if PINNED_IMAGE.match(image):
        return None
    return f"{image!r} is not registry/repository:tag (not latest) or registry/repository@sha256:<digest>"


class StackConfigError(pulumi.RunError):
    """The stack configuration is invalid; the message holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  {line}" for line in problems))


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    monthly_limit_usd: float = Field(alias="monthlyLimitUsd", gt=0)
    recipients: list[str] = Field(min_length=1)
    # Percentages of the limit at which the recipients are told (actual spend / forecast).
    actual_alert_percent: float = Field(default=80, alias="actualAlertPercent", gt=0)
    forecast_alert_percent: float = Field(default=100, alias="forecastAlertPercent", gt=0)

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        wrong = [address for address in value if not re.match(EMAIL, address)]
        if wrong:
            raise ValueError(f"not an e-mail address: {', '.join(wrong)}")
        return value


class StackSettings(BaseModel):
    """The project's keys in one stack file (camelCase, as `pulumi config set` writes them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    owner: str = Field(min_length=1, pattern=r"^[\w.@+-]+$")
    cost_center: str = Field(alias="costCenter", min_length=1, pattern=r"^[\w.@+-]+$")
    budget: Budget
    webhook_url: SecretStr = Field(alias="webhookUrl")
    webhook_signing_secret: SecretStr | None = Field(default=None, alias="webhookSigningSecret")
    # The image to run (a tag or digest); without it the overlay's own image (environments.yaml).
    image: str | None = None
    # IAM roles (CI, the platform team) given cluster-admin through EKS access entries.
    cluster_admin_role_arns: list[Annotated[str, Field(pattern=r"^arn:aws:iam::\d{12}:role/.+$")]] = Field(
        default_factory=list, alias="clusterAdminRoleArns"
    )
    # Previews only: the dev stack they run on (org/project/stack) ...
    dev_stack: str | None = Field(default=None, alias="devStack", pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+$")
    # ... and, when Pulumi runs outside the dev VPC, a tunnel to its database (host:port).
    preview_database_tunnel: str | None = Field(
        default=None, alias="previewDatabaseTunnel", pattern=r"^[\w.-]+:\d{1,5}$"
    )

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        problem = image_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("cluster_admin_role_arns", "budget", mode="before")
    @classmethod
    def _decoded(cls, value: Any) -> Any:
        return _decode(value)


def _decode(value: Any) -> Any:
    # Objects and lists reach the program as JSON strings.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


@dataclass(frozen=True)
class Target:
    """What one stack deploys: an environment from environments.yaml, or a pull request's preview."""

    stack: str
    environment: Environment
    pull_request: int | None
    region: str
    settings: StackSettings

    @property
    def is_preview(self) -> bool:
        return self.pull_request is not None

    @property
    def environment_label(self) -> str:
        """The `environment` tag and alert label: dev, staging, prod or preview."""
        return self.environment.name


def _raw_project_config(project: str) -> tuple[dict[str, Any], set[str]]:
    prefix = f"{project}:"
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    values = {key.removeprefix(prefix): value for key, value in merged.items() if key.startswith(prefix)}
    # The language host hands config over either way: set_all_config or PULUMI_CONFIG(_SECRET_KEYS).
    env_secret = set(runtime_config.get_config_secret_keys_env())
    secret = {
        key
        for key in values
        if runtime_config.is_config_secret(f"{prefix}{key}") or f"{prefix}{key}" in env_secret
    }
    return values, secret


def _validation_lines(error: ValidationError, project: str) -> list[str]:
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        key = f"{project}:{'.'.join(loc)}" if loc else project
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            secret = " --secret" if loc[0] in SECRET_KEYS else ""
            message = f"is not set (pulumi config set{secret} {loc[0]} ...)"
        elif item["type"] == "extra_forbidden":
            message = "is not a setting of this project (per-environment settings: config/environments.yaml)"
        lines.append(f"{key}: {message}")
    return lines


def _resolve_environment(
    stack: str, catalogue: EnvironmentsConfig
) -> tuple[Environment | None, int | None, list[str]]:
    if stack in ENVIRONMENT_STACKS:
        try:
            env = catalogue.get(stack)
        except KeyError as error:
            return None, None, [f"stack {stack}: {error.args[0]}"]
        if env.infra is None:
            return None, None, [f"config/environments.yaml: environments.{stack}.infra is not set"]
        return env, None, []
    match = PREVIEW_STACK.match(stack)
    if match:
        number = int(match["number"])
        return catalogue.get("preview").for_pull_request(number), number, []
    if stack == "pr":
        return (
            None,
            None,
            ["stack pr is the template previews are created from: deploy pr-<n> (make preview)"],
        )
    return None, None, [f"stack {stack}: expected one of {', '.join(ENVIRONMENT_STACKS)} or pr-<n>"]


def load_target(catalogue: EnvironmentsConfig | None = None) -> Target:
    """Read and check this stack's configuration; raises StackConfigError listing every problem."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    problems: list[str] = []
    try:
        catalogue = catalogue or environments.load()
    except EnvironmentsError as error:
        raise StackConfigError(error.problems) from None
    env, pull_request, env_problems = _resolve_environment(stack, catalogue)
    problems += env_problems

    values, secret = _raw_project_config(project)
    for key in sorted(SECRET_KEYS & values.keys() - secret):
        problems.append(f"{project}:{key}: must be a secret (pulumi config set --secret {key} ...)")
    settings: StackSettings | None = None
    try:
        settings = StackSettings.model_validate(values)
    except ValidationError as error:
        problems += _validation_lines(error, project)

    region = pulumi.Config("aws").get("region")
    if not region:  # previews too: their budget and the preview admin's secret live in AWS
        problems.append("aws:region: is not set (pulumi config set aws:region <region>)")
    if settings is not None:
        if pull_request is not None and settings.dev_stack is None:
            problems.append(f"{project}:devStack: previews need the dev stack (org/{project}/dev)")
        if pull_request is not None and settings.image is None:
            problems.append(
                f"{project}:image: previews deploy the pull request's image (make preview IMAGE=...)"
            )
        if pull_request is None and settings.dev_stack is not None:
            problems.append(f"{project}:devStack: only previews (pr-<n>) read another stack")
        if pull_request is None and settings.preview_database_tunnel is not None:
            problems.append(f"{project}:previewDatabaseTunnel: only previews (pr-<n>) use it")
    if problems or env is None or settings is None or not region:
        raise StackConfigError(problems)
    return Target(stack=stack, environment=env, pull_request=pull_request, region=region, settings=settings)

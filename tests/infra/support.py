"""Run the Pulumi program under the SDK's mocks with a stack's real config file, record everything.

No Pulumi CLI or provider plugin is involved: `pulumi.runtime.set_mocks` stands in for the engine.
What the engine would do and the mock monitor does not is done here, faithfully: the resource and
stack transforms run on every registration (the recorded inputs are what a provider would get),
and `protect` and `ignore_changes` are read from the registration request.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.stack_names import PROJECT
from kit.paths import ROOT

MAIN = ROOT / "infra" / "__main__.py"
STACKS = ("dev", "staging", "prod", "pr-123")
PR_IMAGE = "ghcr.io/example/reference-service@sha256:" + "ab" * 32
# What `pulumi config set --secret` would have put in the stack (the files never hold them).
TEST_SECRETS = {
    "webhookUrl": "https://hooks.example.test/reference-service",
    "webhookSigningSecret": "test-signing-secret-value",
}
DEV_OUTPUTS = {
    "kubeconfig": '{"apiVersion": "v1", "kind": "Config"}',
    "databaseAddress": "reference-service-dev.abc.eu-west-1.rds.amazonaws.com",
    "databasePort": 5432,
    "previewAdminSecretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:preview-admin",
    "cacheUrl": "redis://reference-service-dev.cache.amazonaws.com:6379/0",
}
PREVIEW_ADMIN_PASSWORD = "preview-admin-password-from-secrets-manager"


def stack_file(stack: str) -> Path:
    """Pulumi.<stack>.yaml; a preview stack pr-<n> starts as a copy of Pulumi.pr.yaml."""
    name = "pr" if stack.startswith("pr-") else stack
    return ROOT / f"Pulumi.{name}.yaml"


def stack_config(stack: str) -> dict[str, Any]:
    return dict((yaml.safe_load(stack_file(stack).read_text()) or {}).get("config") or {})


def as_runtime_config(values: dict[str, Any]) -> dict[str, str]:
    """What the CLI hands the program: strings; objects and lists as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()


@dataclass
class Run:
    stack: str
    resources: list[Recorded]
    outputs: dict[str, Any]
    error: BaseException | None = None
    secret_outputs: set[str] = field(default_factory=set)
    # Wall-clock bounds of the run (the preview's expiry is computed inside it).
    started: float = 0.0
    finished: float = 0.0

    def of_type(self, type_token: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Recorded:
        found = self.of_type(type_token)
        assert len(found) == 1, f"{type_token}: {len(found)} registered"
        return found[0]


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if pulumi.runtime.rpc._special_sig_key in value:  # a secret arrives wrapped
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def _outputs_for(type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What the provider would return beyond the inputs, for the attributes the program reads."""
    base = {"arn": f"arn:aws:mock:eu-west-1:111122223333:{name}", "id": f"{name}-id"}
    if type_token == "aws:eks/cluster:Cluster":
        return {
            **base,
            "endpoint": "https://eks.example.test",
            "certificateAuthority": {"data": "Q0VSVA=="},
            "identities": [{"oidcs": [{"issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/TEST"}]}],
            "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-cluster"},
        }
    if type_token == "aws:rds/instance:Instance":
        return {
            **base,
            "address": f"{inputs.get('identifier')}.rds.example.test",
            "endpoint": f"{inputs.get('identifier')}.rds.example.test:5432",
            "masterUserSecrets": [
                {"secretArn": f"arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!{name}"}
            ],
        }
    if type_token == "aws:elasticache/replicationGroup:ReplicationGroup":
        return {**base, "primaryEndpointAddress": f"{inputs.get('replicationGroupId')}.cache.example.test"}
    if type_token == "aws:ecr/repository:Repository":
        return {**base, "repositoryUrl": f"111122223333.dkr.ecr.eu-west-1.amazonaws.com/{inputs.get('name')}"}
    if type_token == "aws:ec2/eip:Eip":
        return {**base, "allocationId": f"eipalloc-{name}"}
    if type_token == "random:index/randomPassword:RandomPassword":
        return {"result": f"random-{name}"}
    if type_token == "pulumi:pulumi:StackReference":
        return {
            "name": inputs.get("name"),
            "outputs": DEV_OUTPUTS,
            "secretOutputNames": ["kubeconfig", "cacheUrl"],
        }
    if type_token.startswith("aws:"):
        return {**base, "name": inputs.get("name", name)}
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.stack_transforms: list[Any] = []
        self.resources: list[Recorded] = []
        self.protected: set[tuple[str, str]] = set()
        self.ignore_changes: dict[tuple[str, str], tuple[str, ...]] = {}

    def register_transform(self, transform: Any) -> None:
        self.stack_transforms.append(transform)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        props: dict[str, Any] = dict(args.inputs)
        # The engine runs the resource's own transforms, then the stack's.
        for transform in [*args.transforms, *self.stack_transforms]:
            result = transform(
                pulumi.ResourceTransformArgs(
                    custom=bool(args.custom),
                    type_=args.typ,
                    name=args.name,
                    props=props,
                    opts=pulumi.ResourceOptions(),
                )
            )
            if result is not None:
                props = dict(result.props)
        props = _unwrap_secrets(props)
        self.resources.append(
            Recorded(
                args.typ,
                args.name,
                props,
                bool(args.custom),
                (args.typ, args.name) in self.protected,
                self.ignore_changes.get((args.typ, args.name), ()),
            )
        )
        return f"{args.name}-id", {**props, **_outputs_for(args.typ, args.name, props)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
                "names": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                "zoneIds": ["a", "b", "c"],
                "id": "eu-west-1",
            }, []
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            secret = json.dumps({"preview_admin_password": PREVIEW_ADMIN_PASSWORD})
            return {"arn": args.args.get("secretId"), "secretString": secret, "id": "v1"}, []
        raise AssertionError(f"unexpected invoke {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also noting protect=True and ignore_changes of each registration."""

    mocks: RecordingMocks

    def RegisterResource(self, request: Any) -> Any:
        if request.protect:
            self.mocks.protected.add((request.type, request.name))
        if request.ignoreChanges:
            self.mocks.ignore_changes[(request.type, request.name)] = tuple(request.ignoreChanges)
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


def run_stack(stack: str, config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None) -> Run:
    """Run infra/__main__.py as stack `stack`; `config` defaults to the stack file (+ make preview's)."""
    values = stack_config(stack) if config is None else config
    if config is None and stack.startswith("pr-"):
        values = {**values, f"{PROJECT}:image": PR_IMAGE}  # what `make preview IMAGE=...` sets
    secret_values = TEST_SECRETS if secrets is None else secrets
    all_values = {**values, **{f"{PROJECT}:{key}": value for key, value in secret_values.items()}}
    mocks = RecordingMocks()
    # The SDK schedules its work on the thread's current event loop; an earlier async test
    # (pytest-asyncio) may have closed and unset it, so each run gets a loop of its own.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.settings.ROOT.set(None)  # a fresh Stack (and its outputs) for every run
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )
    pulumi.runtime.set_all_config(
        as_runtime_config(all_values), secret_keys=[f"{PROJECT}:{key}" for key in secret_values]
    )
    error: BaseException | None = None

    def program() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    started = time.time()
    try:
        _sync_await(run_pulumi_func(program))
    except Exception as raised:
        error = raised
    finished = time.time()
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    root = pulumi.runtime.settings.get_root_resource()
    if error is None and root is not None:
        for key, value in getattr(root, "outputs", {}).items():
            output = pulumi.Output.from_input(value)
            outputs[key] = _sync_await(output.future())
            if _sync_await(output.is_secret()):
                secret_outputs.add(key)
    return Run(stack, mocks.resources, outputs, error, secret_outputs, started, finished)

"""Each policy fails on a crafted bad resource and passes on what every stack really registers."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policy import validators
from infra.policy.policies import all_policies
from infra.policy.validators import Resource
from tests.infra.support import STACKS, Run

TAGS = {"environment": "dev", "owner": "team", "cost-center": "cc-1"}
PROD_TAGS = {**TAGS, "environment": "prod"}
GOOD_DB = {"storageEncrypted": True, "publiclyAccessible": False, "tags": TAGS}
GOOD_PROD_DB = {
    **GOOD_DB,
    "multiAz": True,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
    "tags": PROD_TAGS,
}
GOOD_CACHE = {
    "atRestEncryptionEnabled": True,
    "transitEncryptionEnabled": True,
    "authToken": "t",
    "tags": TAGS,
}
GOOD_REPO = {
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
    "tags": TAGS,
}
BUDGET = {
    "name": "b",
    "notifications": [{"notificationType": "ACTUAL"}, {"notificationType": "FORECASTED"}],
    "tags": TAGS,
}


def recorded(run: Run) -> list[Resource]:
    return [Resource(r.type, r.inputs, r.protect) for r in run.resources if r.custom]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_every_policy(runs: dict[str, Run], stack: str) -> None:
    assert validators.violations(recorded(runs[stack])) == []


@pytest.mark.parametrize(
    ("validator", "resource", "expected"),
    [
        (
            validators.data_stores_encrypted,
            Resource(validators.RDS_INSTANCE, {**GOOD_DB, "storageEncrypted": False}),
            "storageEncrypted",
        ),
        (
            validators.data_stores_encrypted,
            Resource(validators.RDS_INSTANCE, {"tags": TAGS}),
            "storageEncrypted",
        ),
        (
            validators.data_stores_encrypted,
            Resource(validators.REDIS_GROUP, {**GOOD_CACHE, "atRestEncryptionEnabled": False}),
            "atRestEncryptionEnabled",
        ),
        (
            validators.database_not_public,
            Resource(validators.RDS_INSTANCE, {**GOOD_DB, "publiclyAccessible": True}),
            "publiclyAccessible",
        ),
        (
            validators.production_data_stores_resilient,
            Resource(validators.RDS_INSTANCE, {**GOOD_PROD_DB, "multiAz": False}, True),
            "multiAz",
        ),
        (
            validators.production_data_stores_resilient,
            Resource(validators.RDS_INSTANCE, {**GOOD_PROD_DB, "deletionProtection": False}, True),
            "deletionProtection",
        ),
        (
            validators.production_data_stores_resilient,
            Resource(validators.RDS_INSTANCE, {**GOOD_PROD_DB, "skipFinalSnapshot": True}, True),
            "skipFinalSnapshot",
        ),
        (
            validators.production_data_stores_resilient,
            Resource(validators.RDS_INSTANCE, GOOD_PROD_DB, False),
            "protect=True",
        ),
        (
            validators.production_data_stores_resilient,
            Resource(validators.REDIS_GROUP, {**GOOD_CACHE, "tags": PROD_TAGS}),
            "multiAzEnabled",
        ),
        (
            validators.cache_transit_protected,
            Resource(
                validators.REDIS_GROUP, {**GOOD_CACHE, "transitEncryptionEnabled": False, "tags": PROD_TAGS}
            ),
            "transitEncryptionEnabled",
        ),
        (
            validators.cache_transit_protected,
            Resource(
                validators.REDIS_GROUP,
                {**GOOD_CACHE, "authToken": None, "tags": {**TAGS, "environment": "staging"}},
            ),
            "authToken",
        ),
        (
            validators.registry_immutable_and_scanned,
            Resource(validators.ECR_REPOSITORY, {**GOOD_REPO, "imageTagMutability": "MUTABLE"}),
            "IMMUTABLE",
        ),
        (
            validators.registry_immutable_and_scanned,
            Resource(
                validators.ECR_REPOSITORY, {**GOOD_REPO, "imageScanningConfiguration": {"scanOnPush": False}}
            ),
            "scanOnPush",
        ),
        (
            validators.required_tags,
            Resource("aws:ec2/vpc:Vpc", {"tags": {"environment": "dev"}}),
            "owner, cost-center",
        ),
        (validators.required_tags, Resource("aws:s3/bucket:Bucket", {}), "environment, owner, cost-center"),
        (
            validators.required_tags,
            Resource("aws:ec2/vpc:Vpc", {"tags": {**TAGS, "environment": "preview"}}),
            "pr",
        ),
        (
            validators.no_world_open_data_ports,
            Resource(
                validators.SECURITY_GROUP,
                {
                    "ingress": [
                        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]}
                    ]
                },
            ),
            "PostgreSQL",
        ),
        (
            validators.no_world_open_data_ports,
            Resource(
                validators.SECURITY_GROUP,
                {
                    "ingress": [
                        {"protocol": "tcp", "fromPort": 6000, "toPort": 7000, "ipv6CidrBlocks": ["::/0"]}
                    ]
                },
            ),
            "Redis",
        ),
        (
            validators.no_world_open_data_ports,
            Resource(
                validators.SECURITY_GROUP,
                {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
            ),
            "PostgreSQL",
        ),
        (
            validators.no_world_open_data_ports,
            Resource(
                validators.SECURITY_GROUP_RULE,
                {
                    "type": "ingress",
                    "protocol": "tcp",
                    "fromPort": 6379,
                    "toPort": 6379,
                    "cidrBlocks": ["0.0.0.0/0"],
                },
            ),
            "Redis",
        ),
        (
            validators.no_world_open_data_ports,
            Resource(
                validators.INGRESS_RULE,
                {"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv4": "0.0.0.0/0"},
            ),
            "PostgreSQL",
        ),
    ],
)
def test_each_rule_fails_on_a_bad_resource(validator: Any, resource: Resource, expected: str) -> None:
    problems = validator(resource)
    assert problems, resource
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("validator", "resource"),
    [
        (validators.data_stores_encrypted, Resource(validators.RDS_INSTANCE, GOOD_DB)),
        (validators.production_data_stores_resilient, Resource(validators.RDS_INSTANCE, GOOD_PROD_DB, True)),
        # Outside prod, a single-AZ database is fine.
        (
            validators.production_data_stores_resilient,
            Resource(validators.RDS_INSTANCE, {**GOOD_DB, "multiAz": False}),
        ),
        (
            validators.cache_transit_protected,
            Resource(validators.REDIS_GROUP, {"atRestEncryptionEnabled": True, "tags": TAGS}),
        ),
        (validators.registry_immutable_and_scanned, Resource(validators.ECR_REPOSITORY, GOOD_REPO)),
        (validators.required_tags, Resource("aws:ec2/route:Route", {})),  # takes no tags
        (validators.required_tags, Resource("kubernetes:core/v1:Namespace", {})),
        (
            validators.no_world_open_data_ports,
            Resource(
                validators.SECURITY_GROUP,
                {
                    "ingress": [
                        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}
                    ]
                },
            ),
        ),
        (
            validators.no_world_open_data_ports,
            Resource(
                validators.SECURITY_GROUP,
                {
                    "ingress": [
                        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.0.0.0/16"]}
                    ]
                },
            ),
        ),
    ],
)
def test_each_rule_passes_a_good_resource(validator: Any, resource: Resource) -> None:
    assert validator(resource) == []


def test_budget_policy_needs_a_budget_with_both_alerts() -> None:
    assert validators.budget_present([Resource("aws:ec2/vpc:Vpc", {"tags": TAGS})]) == [
        "no aws.budgets.Budget in this stack: every environment needs one"
    ]
    only_actual = {**BUDGET, "notifications": [{"notificationType": "ACTUAL"}]}
    assert validators.budget_present([Resource(validators.BUDGET, only_actual)]) == [
        "budget b: no FORECASTED notification"
    ]
    assert validators.budget_present([Resource(validators.BUDGET, BUDGET)]) == []


def _options(protect: bool) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def test_the_pack_reports_through_pulumi_policy() -> None:
    """The wrappers the CLI runs: a bad resource is reported, a stack without budget too."""
    policies = {p.name: p for p in all_policies()}
    assert set(policies) == {*validators.RESOURCE_VALIDATORS, *validators.STACK_VALIDATORS}
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    public_db = ResourceValidationArgs(
        validators.RDS_INSTANCE,
        {**GOOD_PROD_DB, "publiclyAccessible": True},
        "urn:pulumi:prod::reference-platform::aws:rds/instance:Instance::db",
        "db",
        _options(protect=True),
        None,
    )
    for name in ("database-not-public", "prod-data-stores-resilient"):
        policy = policies[name]
        assert isinstance(policy, ResourceValidationPolicy)
        assert policy.validate is not None
        validate = policy.validate[0] if isinstance(policy.validate, list) else policy.validate
        validate(public_db, report)
    assert reported == ["publiclyAccessible must be false: the database is reachable from the VPC only"]
    stack_policy = policies["budget-present"]
    assert isinstance(stack_policy, StackValidationPolicy)
    assert stack_policy.validate is not None
    vpc = PolicyResource("aws:ec2/vpc:Vpc", {"tags": TAGS}, "urn", "vpc", _options(False), None, None, [], {})
    stack_policy.validate(StackValidationArgs([vpc]), report)
    assert reported[-1].startswith("no aws.budgets.Budget")

"""The platform's mandatory rules as plain functions: a resource in, a list of violations out.

Props use the engine's camelCase names (what a policy pack and the SDK mocks both see).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.transforms import is_taggable

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
REDIS_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
BUDGET = "aws:budgets/budget:Budget"

REQUIRED_TAGS = ("environment", "owner", "cost-center")
DATA_PORTS = {5432: "PostgreSQL", 6379: "Redis"}
WORLD = {"0.0.0.0/0", "::/0"}
PRODUCTION = "prod"


@dataclass(frozen=True)
class Resource:
    """What a validator sees of one resource (a policy pack's PolicyResource, or a mock record)."""

    type: str
    props: Mapping[str, Any]
    protect: bool = False

    @property
    def tags(self) -> Mapping[str, Any]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}

    @property
    def environment(self) -> str | None:
        value = self.tags.get("environment")
        return str(value) if value is not None else None


ResourceValidator = Callable[[Resource], list[str]]
StackValidator = Callable[[Sequence[Resource]], list[str]]


def data_stores_encrypted(resource: Resource) -> list[str]:
    if resource.type in (RDS_INSTANCE, RDS_CLUSTER) and resource.props.get("storageEncrypted") is not True:
        return ["storageEncrypted must be true: database storage is encrypted at rest"]
    if resource.type == REDIS_GROUP and resource.props.get("atRestEncryptionEnabled") is not True:
        return ["atRestEncryptionEnabled must be true: cache snapshots and swap are encrypted at rest"]
    return []


def database_not_public(resource: Resource) -> list[str]:
    if resource.type in (RDS_INSTANCE, RDS_CLUSTER) and resource.props.get("publiclyAccessible") is True:
        return ["publiclyAccessible must be false: the database is reachable from the VPC only"]
    return []


def production_data_stores_resilient(resource: Resource) -> list[str]:
    if resource.environment != PRODUCTION:
        return []
    problems = []
    if resource.type == RDS_INSTANCE:
        if resource.props.get("multiAz") is not True:
            problems.append("multiAz must be true in prod: a standby in another zone")
        if resource.props.get("deletionProtection") is not True:
            problems.append("deletionProtection must be true in prod")
        if resource.props.get("skipFinalSnapshot") is not False:
            problems.append("skipFinalSnapshot must be false in prod: deleting keeps a final snapshot")
        if not resource.protect:
            problems.append("the prod database must be created with protect=True")
    if resource.type == REDIS_GROUP:
        if resource.props.get("multiAzEnabled") is not True:
            problems.append("multiAzEnabled must be true in prod")
        if resource.props.get("automaticFailoverEnabled") is not True:
            problems.append("automaticFailoverEnabled must be true in prod")
    return problems


def cache_transit_protected(resource: Resource) -> list[str]:
    """Staging and prod caches speak TLS and require the auth token."""
    if resource.type != REDIS_GROUP or resource.environment not in ("staging", PRODUCTION):
        return []
    problems = []
    if resource.props.get("transitEncryptionEnabled") is not True:
        problems.append(f"transitEncryptionEnabled must be true in {resource.environment}")
    if not resource.props.get("authToken"):
        problems.append(f"authToken must be set in {resource.environment}")
    return problems


def registry_immutable_and_scanned(resource: Resource) -> list[str]:
    if resource.type != ECR_REPOSITORY:
        return []
    problems = []
    if resource.props.get("imageTagMutability") != "IMMUTABLE":
        problems.append("imageTagMutability must be IMMUTABLE: a tag names one build forever")
    scanning = resource.props.get("imageScanningConfiguration") or {}
    if not (isinstance(scanning, Mapping) and scanning.get("scanOnPush") is True):
        problems.append("imageScanningConfiguration.scanOnPush must be true")
    return problems


def required_tags(resource: Resource) -> list[str]:
    if not is_taggable(resource.type):
        return []
    required = [*REQUIRED_TAGS, *(["pr"] if resource.environment == "preview" else [])]
    missing = [tag for tag in required if not resource.tags.get(tag)]
    return [f"missing cost-allocation tags: {', '.join(missing)}"] if missing else []


def _covers_data_port(from_port: Any, to_port: Any, protocol: Any) -> list[str]:
    if str(protocol) in ("-1", "all"):
        return list(DATA_PORTS.values())
    try:
        low, high = int(from_port), int(to_port)
    except (TypeError, ValueError):
        return []
    return [name for port, name in DATA_PORTS.items() if low <= port <= high]


def _open_to_world(cidrs: Iterable[Any]) -> bool:
    return any(str(cidr) in WORLD for cidr in cidrs)


def no_world_open_data_ports(resource: Resource) -> list[str]:
    props = resource.props
    rules: list[tuple[Any, Any, Any, list[Any]]] = []
    if resource.type == SECURITY_GROUP:
        for rule in props.get("ingress") or []:
            cidrs = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
            rules.append((rule.get("fromPort"), rule.get("toPort"), rule.get("protocol"), cidrs))
    elif resource.type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        cidrs = [*(props.get("cidrBlocks") or []), *(props.get("ipv6CidrBlocks") or [])]
        rules.append((props.get("fromPort"), props.get("toPort"), props.get("protocol"), cidrs))
    elif resource.type == INGRESS_RULE:
        cidrs = [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]
        rules.append((props.get("fromPort"), props.get("toPort"), props.get("ipProtocol"), cidrs))
    problems = []
    for from_port, to_port, protocol, cidrs in rules:
        if _open_to_world(cidrs):
            for name in _covers_data_port(from_port, to_port, protocol):
                problems.append(f"ingress open to the world on the {name} port")
    return problems


def budget_present(resources: Sequence[Resource]) -> list[str]:
    """Every stack (environment or preview) carries a budget alerting on actual and forecast spend."""
    budgets = [r for r in resources if r.type == BUDGET]
    if not budgets:
        return ["no aws.budgets.Budget in this stack: every environment needs one"]
    problems = []
    for budget in budgets:
        kinds = {
            n.get("notificationType")
            for n in budget.props.get("notifications") or []
            if isinstance(n, Mapping)
        }
        missing = {"ACTUAL", "FORECASTED"} - kinds
        if missing:
            problems.append(f"budget {budget.props.get('name')}: no {'/'.join(sorted(missing))} notification")
    return problems


RESOURCE_VALIDATORS: dict[str, tuple[str, ResourceValidator]] = {
    "data-stores-encrypted": ("RDS and ElastiCache are encrypted at rest", data_stores_encrypted),
    "database-not-public": ("No publicly accessible database", database_not_public),
    "prod-data-stores-resilient": (
        "Prod: multi-AZ, deletion protection, final snapshot and protect=True on data stores",
        production_data_stores_resilient,
    ),
    "cache-transit-protected": ("Staging/prod caches use TLS and an auth token", cache_transit_protected),
    "ecr-immutable-scanned": (
        "ECR repositories: immutable tags, scan on push",
        registry_immutable_and_scanned,
    ),
    "required-tags": ("Cost-allocation tags on every taggable AWS resource", required_tags),
    "no-world-open-data-ports": (
        "No security group opens a database or cache port to the world",
        no_world_open_data_ports,
    ),
}
STACK_VALIDATORS: dict[str, tuple[str, StackValidator]] = {
    "budget-present": ("An AWS budget with actual and forecast alerts in every stack", budget_present),
}


def violations(resources: Sequence[Resource]) -> list[str]:
    """Every rule over every resource: `<policy>: <type> <name?>: <problem>` lines."""
    lines = []
    for policy, (_, validate) in RESOURCE_VALIDATORS.items():
        for resource in resources:
            lines += [f"{policy}: {resource.type}: {problem}" for problem in validate(resource)]
    for policy, (_, validate_stack) in STACK_VALIDATORS.items():
        lines += [f"{policy}: {problem}" for problem in validate_stack(resources)]
    return lines

"""ElastiCache Redis: encrypted at rest; TLS and an auth token where the settings ask for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components.network import vpc_only_firewall
from kit.environments import CacheSettings

PORT = 6379


@dataclass(frozen=True)
class CacheArgs:
    name: str
    settings: CacheSettings
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: Sequence[pulumi.Input[str]]


class Cache(pulumi.ComponentResource):
    address: pulumi.Output[str]
    port: int
    tls: bool
    # None without auth; a secret Output otherwise.
    auth_token: pulumi.Output[str] | None

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        subnets = aws.elasticache.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids), opts=child)
        firewall = vpc_only_firewall(
            f"{name}-sg", f"{args.name}: Redis from inside the VPC", args.vpc_id, args.vpc_cidr, PORT, child
        )
        self.auth_token = None
        if settings.auth_token:
            token = random.RandomPassword(f"{name}-auth-token", length=64, special=False, opts=child)
            self.auth_token = pulumi.Output.secret(token.result)
        group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            replication_group_id=args.name,
            description=f"{args.name}: rate limits, idempotency keys",
            engine="redis",
            engine_version="7.1",
            node_type=settings.node_type,
            num_cache_clusters=settings.nodes,
            automatic_failover_enabled=settings.nodes > 1,
            multi_az_enabled=settings.multi_az,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=settings.tls,
            auth_token=self.auth_token,
            port=PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[firewall.id],
            snapshot_retention_limit=settings.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            opts=child,
        )
        self.address = group.primary_endpoint_address
        self.port = PORT
        self.tls = settings.tls
        self.register_outputs({"address": self.address})

    def url(self) -> pulumi.Output[str]:
        """REDIS_URL for the service (rediss:// with TLS, the token as password)."""
        scheme = "rediss" if self.tls else "redis"
        if self.auth_token is None:
            return self.address.apply(lambda host: f"{scheme}://{host}:{self.port}/0")
        return pulumi.Output.secret(
            pulumi.Output.all(self.address, self.auth_token).apply(
                lambda values: f"{scheme}://:{values[1]}@{values[0]}:{self.port}/0"
            )
        )

"""RDS PostgreSQL: encrypted, private, backed up; AWS keeps the master password (Secrets Manager)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.network import vpc_only_firewall
from kit.environments import DatabaseSettings

PORT = 5432


@dataclass(frozen=True)
class DatabaseArgs:
    name: str
    settings: DatabaseSettings
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: Sequence[pulumi.Input[str]]


class Database(pulumi.ComponentResource):
    address: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: int
    database_name: str
    master_secret_arn: pulumi.Output[str]
    instance: aws.rds.Instance

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids), opts=child)
        firewall = vpc_only_firewall(
            f"{name}-sg",
            f"{args.name}: PostgreSQL from inside the VPC",
            args.vpc_id,
            args.vpc_cidr,
            PORT,
            child,
        )
        major = settings.engine_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{major}",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="500"),
            ],
            opts=child,
        )
        self.instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=args.name,
            engine="postgres",
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            allocated_storage=settings.allocated_storage_gib,
            max_allocated_storage=settings.max_allocated_storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=settings.name,
            username="platform_admin",
            # AWS generates, stores (Secrets Manager) and rotates the master password: it never
            # enters Pulumi state, a stack file or the repo.
            manage_master_user_password=True,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[firewall.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=settings.multi_az,
            backup_retention_period=settings.backup_retention_days,
            deletion_protection=settings.deletion_protection,
            skip_final_snapshot=not settings.final_snapshot,
            final_snapshot_identifier=f"{args.name}-final" if settings.final_snapshot else None,
            copy_tags_to_snapshot=True,
            performance_insights_enabled=settings.performance_insights,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            # Renamed resources must not replace the data store: `protect` makes `pulumi destroy`
            # (and a replacement) fail until someone deliberately unprotects it.
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect),
        )
        self.address = self.instance.address
        self.endpoint = self.instance.endpoint
        self.port = PORT
        self.database_name = settings.name
        self.master_secret_arn = self.instance.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn if secrets else ""
        )
        self.register_outputs({"endpoint": self.endpoint, "masterSecretArn": self.master_secret_arn})

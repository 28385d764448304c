"""A pull request's preview on the dev stack: its own database and namespace, no AWS network,
cluster or database server of its own.

The dev stack's outputs (StackReference) give the cluster, the database server and the cache.
The database `preview_pr_<n>` and its two roles are made with the pulumi-postgresql provider,
logged in as dev's `preview_admin` role (its password read from Secrets Manager at deploy time).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_postgresql as postgresql
import pulumi_random as random

from infra import database_roles
from infra.components.app import SECRET_NAME, overlay_directory
from infra.transforms import image_transform
from kit.environments import Environment
from kit.paths import K8S

# Outputs of the dev stack a preview reads (program.py exports them under these names).
DEV_OUTPUTS = ("kubeconfig", "databaseAddress", "databasePort", "previewAdminSecretArn", "cacheUrl")


def database_name(pull_request: int) -> str:
    return f"preview_pr_{pull_request}"


@dataclass(frozen=True)
class PreviewArgs:
    pull_request: int
    environment: Environment  # the `preview` environment, instantiated for this pull request
    dev_stack: str
    image_repository: str
    image: str
    webhook_url: pulumi.Input[str]
    webhook_signing_secret: pulumi.Input[str] | None
    # host:port of a tunnel to dev's database when Pulumi runs outside the dev VPC.
    database_tunnel: str | None = None
    k8s_dir: Path = K8S


class Preview(pulumi.ComponentResource):
    namespace: str
    url: str
    database: str

    def __init__(self, name: str, args: PreviewArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:Preview", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        env = args.environment
        assert env.namespace
        assert env.host
        self.namespace, self.url = env.namespace, f"https://{env.host}"
        self.database = database_name(args.pull_request)

        dev = pulumi.StackReference(args.dev_stack, opts=child)
        db_host = pulumi.Output.from_input(dev.require_output("databaseAddress")).apply(str)
        db_port = pulumi.Output.from_input(dev.require_output("databasePort")).apply(int)
        admin_secret = aws.secretsmanager.get_secret_version_output(
            secret_id=dev.require_output("previewAdminSecretArn"), opts=pulumi.InvokeOptions(parent=self)
        )
        admin_password = pulumi.Output.secret(
            admin_secret.secret_string.apply(lambda text: json.loads(text)["preview_admin_password"])
        )
        if args.database_tunnel:
            tunnel_host, tunnel_port = args.database_tunnel.rsplit(":", 1)
            connect_host: pulumi.Input[str] = tunnel_host
            connect_port: pulumi.Input[int] = int(tunnel_port)
        else:
            connect_host, connect_port = db_host, db_port
        server = postgresql.Provider(
            f"{name}-dev-postgres",
            host=connect_host,
            port=connect_port,
            username=database_roles.PREVIEW_ADMIN_ROLE,
            password=admin_password,
            database="postgres",
            sslmode="require",
            superuser=False,
            opts=child,
        )
        on_server = pulumi.ResourceOptions(parent=self, provider=server)

        def role(kind: str, role_name: str) -> tuple[postgresql.Role, pulumi.Output[str]]:
            password = random.RandomPassword(f"{name}-{kind}", length=40, special=False, opts=child).result
            created = postgresql.Role(
                f"{name}-{kind}", name=role_name, login=True, password=password, opts=on_server
            )
            return created, password

        migrator, migrator_password = role("migrator", database_roles.migrator_role(self.database))
        app, app_password = role("app", database_roles.app_role(self.database))
        database = postgresql.Database(
            f"{name}-database",
            name=self.database,
            owner=migrator.name,
            opts=pulumi.ResourceOptions(parent=self, provider=server, depends_on=[migrator]),
        )
        in_database = pulumi.ResourceOptions(parent=self, provider=server, depends_on=[database, app])
        postgresql.Grant(
            f"{name}-app-connect",
            database=self.database,
            role=app.name,
            object_type="database",
            privileges=["CONNECT"],
            opts=in_database,
        )
        postgresql.Grant(
            f"{name}-app-schema",
            database=self.database,
            schema=database_roles.SCHEMA,
            role=app.name,
            object_type="schema",
            privileges=["USAGE"],
            opts=in_database,
        )
        for object_type, privileges in (
            ("table", database_roles.APP_TABLE_PRIVILEGES),
            ("sequence", database_roles.APP_SEQUENCE_PRIVILEGES),
        ):
            postgresql.DefaultPrivileges(
                f"{name}-app-{object_type}s",
                database=self.database,
                schema=database_roles.SCHEMA,
                owner=migrator.name,
                role=app.name,
                object_type=object_type,
                privileges=list(privileges),
                opts=in_database,
            )

        cluster = k8s.Provider(f"{name}-dev-cluster", kubeconfig=dev.require_output("kubeconfig"), opts=child)
        overlay = k8s.kustomize.v2.Directory(
            f"{name}-overlay",
            directory=str(overlay_directory("preview", args.k8s_dir)),
            namespace=self.namespace,
            opts=pulumi.ResourceOptions(
                parent=self, provider=cluster, transforms=[image_transform(args.image_repository, args.image)]
            ),
        )
        jwt = random.RandomPassword(f"{name}-jwt", length=64, special=False, opts=child).result

        def secret_data(values: list[object]) -> dict[str, str]:
            host, port, app_pw, migrator_pw, jwt_secret, redis_url, webhook, signing = values
            quote = urllib.parse.quote
            data = {
                "DATABASE_URL": database_roles.database_url(
                    database_roles.app_role(self.database),
                    quote(str(app_pw), safe=""),
                    str(host),
                    int(str(port)),
                    self.database,
                ),
                "MIGRATION_DATABASE_URL": database_roles.database_url(
                    database_roles.migrator_role(self.database),
                    quote(str(migrator_pw), safe=""),
                    str(host),
                    int(str(port)),
                    self.database,
                ),
                "REDIS_URL": str(redis_url),
                "JWT_SECRET": str(jwt_secret),
                "WEBHOOK_URL": str(webhook),
            }
            if signing is not None:
                data["WEBHOOK_SIGNING_SECRET"] = str(signing)
            return data

        k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SECRET_NAME, namespace=self.namespace),
            # Secret Outputs in, secret Output out: the values are never plain in state.
            string_data=(
                pulumi.Output.all(
                    db_host,
                    db_port,
                    app_password,
                    migrator_password,
                    jwt,
                    dev.require_output("cacheUrl"),
                    args.webhook_url,
                    args.webhook_signing_secret,
                ).apply(secret_data)
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=cluster, depends_on=[overlay, database]),
        )
        self.register_outputs({"namespace": self.namespace, "url": self.url, "database": self.database})

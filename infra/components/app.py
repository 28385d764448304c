"""The service in one environment: its overlay (kustomize), Secret wiring, database roles.

`k8s/overlays/<env>` stays the single source of truth for the manifests (`kubectl apply -k`
keeps working); Pulumi applies the same directory and only swaps the image when the stack
config names one. The Secret `reference-service-secrets` is written by External Secrets from
Secrets Manager (IRSA, no key anywhere); a Job creates the two database roles with the master
credentials AWS keeps, which never pass through Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import database_roles
from infra.components.addons import SECRET_STORE
from infra.transforms import image_transform
from kit.environments import Environment
from kit.paths import K8S

SECRET_NAME = "reference-service-secrets"  # noqa: S105 (the Secret's name, CONTRACTS.md)
BOOTSTRAP = "reference-service-db-roles"
POSTGRES_CLIENT_IMAGE = "postgres:15.10-alpine"  # psql for the role bootstrap (uid 70, non-root)
EXTERNAL_SECRETS_API = "external-secrets.io/v1"


def overlay_directory(environment: str, k8s_dir: Path = K8S) -> Path:
    return k8s_dir / "overlays" / environment


@dataclass(frozen=True)
class DatabaseEndpoint:
    address: pulumi.Input[str]
    port: int
    name: str
    master_secret_arn: pulumi.Input[str]


@dataclass(frozen=True)
class CacheEndpoint:
    address: pulumi.Input[str]
    port: int
    tls: bool
    auth: bool


@dataclass(frozen=True)
class AppArgs:
    provider: k8s.Provider
    environment: Environment
    image_repository: str
    image: str | None
    database: DatabaseEndpoint
    cache: CacheEndpoint
    secrets_name: str  # the Secrets Manager secret External Secrets extracts (components/secrets.py)
    secret_keys: frozenset[str]
    # dev only: the Secrets Manager secret holding preview_admin's password.
    preview_admin_secret_arn: pulumi.Input[str] | None
    depends_on: list[pulumi.Resource]
    k8s_dir: Path = K8S


def secret_templates(args: AppArgs, host: str) -> dict[str, str]:
    """Go templates External Secrets renders into reference-service-secrets (values never here)."""
    db = args.database
    templates = {
        "DATABASE_URL": database_roles.database_url(
            database_roles.app_role(db.name), "{{ .app_password | urlquery }}", host, db.port, db.name
        ),
        "MIGRATION_DATABASE_URL": database_roles.database_url(
            database_roles.migrator_role(db.name),
            "{{ .migrator_password | urlquery }}",
            host,
            db.port,
            db.name,
        ),
        "JWT_SECRET": "{{ .jwt_secret }}",
        "WEBHOOK_URL": "{{ .webhook_url }}",
    }
    if "webhook_signing_secret" in args.secret_keys:
        templates["WEBHOOK_SIGNING_SECRET"] = "{{ .webhook_signing_secret }}"  # noqa: S105 (a template)
    return templates


def redis_template(cache: CacheEndpoint, address: str) -> str:
    scheme = "rediss" if cache.tls else "redis"
    auth = ":{{ .redis_auth_token | urlquery }}@" if cache.auth else ""
    return f"{scheme}://{auth}{address}:{cache.port}/0"


def external_secret(
    name: str, namespace: str, store_key: str, templates: dict[str, str], data: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "refreshInterval": "1h",
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": SECRET_STORE},
        "target": {
            "name": name,
            "creationPolicy": "Owner",
            "template": {"engineVersion": "v2", "data": templates},
        },
        "dataFrom": [{"extract": {"key": store_key}}],
        "data": data,
    }


def restricted_container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


class App(pulumi.ComponentResource):
    namespace: str
    url: str

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:App", name, None, opts)
        env = args.environment
        assert env.namespace
        assert env.host
        self.namespace, self.url = env.namespace, f"https://{env.host}"
        transforms = [image_transform(args.image_repository, args.image)] if args.image else []
        overlay = k8s.kustomize.v2.Directory(
            f"{name}-overlay",
            directory=str(overlay_directory(env.name, args.k8s_dir)),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=args.depends_on, transforms=transforms
            ),
        )
        after_overlay = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[overlay])
        meta = k8s.meta.v1.ObjectMetaArgs

        app_secret_spec = pulumi.Output.all(args.database.address, args.cache.address).apply(
            lambda hosts: external_secret(
                SECRET_NAME,
                self.namespace,
                args.secrets_name,
                {**secret_templates(args, hosts[0]), "REDIS_URL": redis_template(args.cache, hosts[1])},
                [],
            )
        )
        k8s.apiextensions.CustomResource(
            f"{name}-secrets",
            api_version=EXTERNAL_SECRETS_API,
            kind="ExternalSecret",
            metadata=meta(name=SECRET_NAME, namespace=self.namespace),
            spec=app_secret_spec,
            opts=after_overlay,
        )

        # Role bootstrap: master credentials straight from the RDS-managed secret.
        bootstrap_keys = {
            "PGUSER": "{{ .username }}",
            "PGPASSWORD": "{{ .password }}",
            "APP_PASSWORD": "{{ .app_password }}",
            "MIGRATOR_PASSWORD": "{{ .migrator_password }}",
        }
        preview_admin = args.preview_admin_secret_arn is not None
        if preview_admin:
            bootstrap_keys["PREVIEW_ADMIN_PASSWORD"] = "{{ .preview_admin_password }}"  # noqa: S105 (template)
        bootstrap_secret = k8s.apiextensions.CustomResource(
            f"{name}-db-bootstrap-secret",
            api_version=EXTERNAL_SECRETS_API,
            kind="ExternalSecret",
            metadata=meta(name=BOOTSTRAP, namespace=self.namespace),
            spec=pulumi.Output.all(args.database.master_secret_arn, args.preview_admin_secret_arn).apply(
                lambda arns: external_secret(
                    BOOTSTRAP,
                    self.namespace,
                    args.secrets_name,
                    bootstrap_keys,
                    [
                        {"secretKey": key, "remoteRef": {"key": arns[0], "property": key}}
                        for key in ("username", "password")
                    ]
                    + (
                        [
                            {
                                "secretKey": "preview_admin_password",
                                "remoteRef": {"key": arns[1], "property": "preview_admin_password"},
                            }
                        ]
                        if arns[1]
                        else []
                    ),
                )
            ),
            opts=after_overlay,
        )
        script = k8s.core.v1.ConfigMap(
            f"{name}-db-bootstrap-sql",
            metadata=meta(name=BOOTSTRAP, namespace=self.namespace),
            data={"bootstrap.sql": database_roles.bootstrap_sql(preview_admin)},
            opts=after_overlay,
        )
        labels = {"app.kubernetes.io/name": BOOTSTRAP, "app.kubernetes.io/part-of": "reference-kit"}
        # The overlay denies all traffic by default: this Job may reach DNS and PostgreSQL only.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-db-bootstrap-egress",
            metadata=meta(name=BOOTSTRAP, namespace=self.namespace),
            spec={
                "podSelector": {"matchLabels": labels},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                }
                            }
                        ],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    },
                    {"ports": [{"port": args.database.port, "protocol": "TCP"}]},
                ],
            },
            opts=after_overlay,
        )
        variables = ["app_password", "migrator_password"] + (
            ["preview_admin_password"] if preview_admin else []
        )
        # The database name is safe in a shell word (the schema allows [a-z0-9_] only).
        psql = (
            f"psql -v db={args.database.name} "
            + " ".join(f'-v {v}="${v.upper()}"' for v in variables)
            + " -f /sql/bootstrap.sql"
        )
        k8s.batch.v1.Job(
            f"{name}-db-bootstrap",
            metadata=meta(name=BOOTSTRAP, namespace=self.namespace, labels=labels),
            spec={
                "backoffLimit": 10,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 70,
                            "runAsGroup": 70,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "psql",
                                "image": POSTGRES_CLIENT_IMAGE,
                                "command": ["sh", "-c", psql],
                                "env": [
                                    {"name": "PGHOST", "value": args.database.address},
                                    {"name": "PGPORT", "value": str(args.database.port)},
                                    {"name": "PGDATABASE", "value": args.database.name},
                                    {"name": "PGSSLMODE", "value": "require"},
                                ],
                                "envFrom": [{"secretRef": {"name": BOOTSTRAP}}],
                                "volumeMounts": [{"name": "sql", "mountPath": "/sql", "readOnly": True}],
                                "resources": {
                                    "requests": {"cpu": "10m", "memory": "32Mi"},
                                    "limits": {"cpu": "200m", "memory": "64Mi"},
                                },
                                "securityContext": restricted_container_security(),
                            }
                        ],
                        "volumes": [{"name": "sql", "configMap": {"name": BOOTSTRAP}}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[bootstrap_secret, script],
                delete_before_replace=True,
            ),
        )
        self.register_outputs({"namespace": self.namespace, "url": self.url})

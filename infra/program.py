"""The whole Pulumi program: `main()` builds one stack (dev, staging, prod or pr-<n>).

Nothing happens at import time; `infra/__main__.py` calls `main()`. The stack configuration is
checked first (infra/stack_config.py), so a bad stack file registers no resource at all.
"""

from __future__ import annotations

import time

import pulumi

from infra.components.addons import Addons, AddonsArgs
from infra.components.app import App, AppArgs, CacheEndpoint, DatabaseEndpoint
from infra.components.budget import Budget, BudgetArgs
from infra.components.cache import Cache, CacheArgs
from infra.components.cluster import Cluster, ClusterArgs
from infra.components.database import Database, DatabaseArgs
from infra.components.network import Network, NetworkArgs
from infra.components.observability import Observability, ObservabilityArgs
from infra.components.preview import Preview, PreviewArgs
from infra.components.registry import Registry, RegistryArgs
from infra.components.secrets import AppSecrets, AppSecretsArgs
from infra.stack_config import Target, load_target
from infra.transforms import stack_transform
from kit import environments

SERVICE = "reference-service"
PREVIEW_PR_LABEL = "preview.kit/pr"
PREVIEW_EXPIRES_LABEL = "preview.kit/expires-at"


def cost_tags(target: Target) -> dict[str, str]:
    """The cost-allocation tags every taggable AWS resource of this stack carries."""
    tags = {
        "environment": target.environment_label,
        "owner": target.settings.owner,
        "cost-center": target.settings.cost_center,
        "service": SERVICE,
        "managed-by": "pulumi",
    }
    if target.pull_request is not None:
        tags["pr"] = str(target.pull_request)
    return tags


def preview_labels(target: Target, now: float) -> dict[str, str]:
    """Labels on every Kubernetes object of a preview: its pull request and when it may be swept."""
    if target.pull_request is None:
        return {}
    ttl_hours = target.environment.preview_ttl_hours or 0
    return {
        PREVIEW_PR_LABEL: str(target.pull_request),
        # Unix seconds: label values cannot hold the ':' of an ISO timestamp.
        PREVIEW_EXPIRES_LABEL: str(int(now) + ttl_hours * 3600),
    }


def secret_or_none(value: object) -> pulumi.Output[str] | None:
    get = getattr(value, "get_secret_value", None)
    return pulumi.Output.secret(get()) if get else None


def build_environment(target: Target, catalogue: environments.EnvironmentsConfig) -> None:
    env = target.environment
    infra = env.infra
    assert infra is not None  # load_target refuses an environment stack without `infra`
    settings = target.settings
    name = f"{SERVICE}-{env.name}"

    network = Network("network", NetworkArgs(name, infra.network))
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            name=name,
            region=target.region,
            settings=infra.cluster,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            public_subnet_ids=network.public_subnet_ids,
            admin_role_arns=settings.cluster_admin_role_arns,
        ),
    )
    database = Database(
        "database",
        DatabaseArgs(name, infra.database, network.vpc_id, network.cidr, network.private_subnet_ids),
    )
    cache = Cache(
        "cache", CacheArgs(name, infra.cache, network.vpc_id, network.cidr, network.private_subnet_ids)
    )
    registry = Registry("registry", RegistryArgs(f"{SERVICE}/{env.name}"))
    secrets = AppSecrets(
        "secrets",
        AppSecretsArgs(
            name=f"{SERVICE}/{env.name}/app",
            webhook_url=pulumi.Output.secret(settings.webhook_url.get_secret_value()),
            webhook_signing_secret=secret_or_none(settings.webhook_signing_secret),
            redis_auth_token=cache.auth_token,
            preview_admin=infra.database.preview_admin,
            recovery_window_days=7 if infra.database.protect else 0,
        ),
    )
    readable = [secrets.arn, database.master_secret_arn]
    if secrets.preview_admin_arn is not None:
        readable.append(secrets.preview_admin_arn)
    addons = Addons(
        "addons", AddonsArgs(cluster=cluster, region=target.region, readable_secret_arns=readable)
    )
    # prometheus-adapter where the HPA scales on requests per second (else it never scales down).
    custom_metrics = env.autoscaling is not None and env.autoscaling.target_requests_per_second is not None
    observability = Observability(
        "observability",
        ObservabilityArgs(provider=cluster.provider, environment=env.name, custom_metrics=custom_metrics),
    )
    app = App(
        "app",
        AppArgs(
            provider=cluster.provider,
            environment=env,
            image_repository=catalogue.image_repository,
            image=settings.image,
            database=DatabaseEndpoint(
                database.address, database.port, database.database_name, database.master_secret_arn
            ),
            cache=CacheEndpoint(cache.address, cache.port, cache.tls, cache.auth_token is not None),
            secrets_name=secrets.secret_name,
            secret_keys=secrets.keys,
            preview_admin_secret_arn=secrets.preview_admin_arn,
            depends_on=[*addons.ready, *observability.ready],
        ),
    )
    Budget("budget", BudgetArgs(name, settings.budget, "environment", env.name))

    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("databaseEndpoint", database.endpoint)
    pulumi.export("databaseAddress", database.address)
    pulumi.export("databasePort", database.port)
    pulumi.export("cacheEndpoint", cache.address)
    pulumi.export("cacheUrl", pulumi.Output.secret(cache.url()))
    pulumi.export("registryUrl", registry.repository_url)
    pulumi.export("namespace", app.namespace)
    pulumi.export("serviceUrl", app.url)
    if secrets.preview_admin_arn is not None:
        pulumi.export("previewAdminSecretArn", secrets.preview_admin_arn)


def build_preview(target: Target, catalogue: environments.EnvironmentsConfig, expires_at: str) -> None:
    settings = target.settings
    # load_target refuses a preview without these.
    assert target.pull_request is not None
    assert settings.dev_stack
    assert settings.image
    preview = Preview(
        "preview",
        PreviewArgs(
            pull_request=target.pull_request,
            environment=target.environment,
            dev_stack=settings.dev_stack,
            image_repository=catalogue.image_repository,
            image=settings.image,
            webhook_url=pulumi.Output.secret(settings.webhook_url.get_secret_value()),
            webhook_signing_secret=secret_or_none(settings.webhook_signing_secret),
            database_tunnel=settings.preview_database_tunnel,
        ),
    )
    Budget(
        "budget",
        BudgetArgs(f"{SERVICE}-pr-{target.pull_request}", settings.budget, "pr", str(target.pull_request)),
    )
    pulumi.export("pullRequest", target.pull_request)
    pulumi.export("namespace", preview.namespace)
    pulumi.export("database", preview.database)
    pulumi.export("serviceUrl", preview.url)
    pulumi.export("image", settings.image)
    pulumi.export("expiresAt", int(expires_at))


def main(now: float | None = None) -> None:
    """Build this stack. Raises StackConfigError (one line per problem) before registering anything."""
    target = load_target()  # also validates config/environments.yaml
    catalogue = environments.load()
    labels = preview_labels(target, time.time() if now is None else now)
    pulumi.runtime.register_resource_transform(stack_transform(cost_tags(target), labels))
    if target.is_preview:
        build_preview(target, catalogue, labels[PREVIEW_EXPIRES_LABEL])
    else:
        build_environment(target, catalogue)

"""The whole program under mocks for dev, staging, prod and a pr-123 preview: what each creates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.addons import CHARTS, GATEWAY_DIRECTORY
from infra.components.observability import RETENTION
from infra.transforms import is_taggable
from kit import environments
from kit.paths import DASHBOARDS, K8S
from tests.infra.support import DEV_OUTPUTS, PR_IMAGE, STACKS, TEST_SECRETS, Run, stack_config

CONFIG = environments.load()
ENVIRONMENT_STACKS = ("dev", "staging", "prod")
AWS_SERVERS = (
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/natGateway:NatGateway",
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:ecr/repository:Repository",
)


def test_every_stack_runs_without_error(runs: dict[str, Run]) -> None:
    for stack in STACKS:
        assert runs[stack].error is None, f"{stack}: {runs[stack].error}"
        assert runs[stack].resources, stack


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_environment_stack_creates_the_platform(runs: dict[str, Run], stack: str) -> None:
    run = runs[stack]
    settings = CONFIG.get(stack).infra
    assert settings is not None
    for component in (
        "Network",
        "Cluster",
        "Database",
        "Cache",
        "Registry",
        "Addons",
        "Observability",
        "App",
        "Budget",
    ):
        assert run.of_type(f"platform:infra:{component}"), component
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 2 * settings.network.availability_zones
    assert len({s.inputs["availabilityZone"] for s in subnets}) == settings.network.availability_zones
    cluster = run.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["version"] == settings.cluster.kubernetes_version
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    nodes = run.one("aws:eks/nodeGroup:NodeGroup").inputs
    assert nodes["scalingConfig"] == {
        "minSize": settings.cluster.node_group.min_size,
        "desiredSize": settings.cluster.node_group.desired_size,
        "maxSize": settings.cluster.node_group.max_size,
    }
    assert nodes["instanceTypes"] == settings.cluster.node_group.instance_types
    oidc = run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]
    assert oidc["url"].startswith("https://oidc.eks.")
    # IRSA: External Secrets, cert-manager and the EBS driver may assume their roles only as
    # their own service accounts.
    trusts = [json.loads(r.inputs["assumeRolePolicy"]) for r in run.of_type("aws:iam/role:Role")]
    subjects = {
        value
        for trust in trusts
        for statement in trust["Statement"]
        for key, value in statement.get("Condition", {}).get("StringEquals", {}).items()
        if key.endswith(":sub")
    }
    assert subjects == {
        "system:serviceaccount:external-secrets:external-secrets",
        "system:serviceaccount:cert-manager:cert-manager",
        "system:serviceaccount:kube-system:ebs-csi-controller-sa",
    }
    addons = {a.inputs["addonName"]: a.inputs for a in run.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_nat_gateways_follow_the_settings(runs: dict[str, Run]) -> None:
    assert len(runs["dev"].of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(runs["staging"].of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(runs["prod"].of_type("aws:ec2/natGateway:NatGateway")) == 3
    # prod: each private subnet's default route leaves through its own zone's NAT gateway.
    routes = [r.inputs for r in runs["prod"].of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len({r["natGatewayId"] for r in routes}) == 3
    dev_routes = [r.inputs for r in runs["dev"].of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len(dev_routes) == 3
    assert len({r["natGatewayId"] for r in dev_routes}) == 1


def _database(run: Run) -> Any:
    return run.one("aws:rds/instance:Instance")


def test_prod_database_is_multi_az_protected_and_keeps_a_final_snapshot(runs: dict[str, Run]) -> None:
    db = _database(runs["prod"])
    assert db.protect
    assert db.inputs["multiAz"] is True
    assert db.inputs["deletionProtection"] is True
    assert db.inputs["skipFinalSnapshot"] is False
    assert db.inputs["finalSnapshotIdentifier"] == "reference-service-prod-final"
    assert db.inputs["backupRetentionPeriod"] == 14


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_database_is_encrypted_private_and_aws_keeps_its_password(
    runs: dict[str, Run], stack: str
) -> None:
    db = _database(runs[stack]).inputs
    assert db["storageEncrypted"] is True
    assert db["publiclyAccessible"] is False
    assert db["manageMasterUserPassword"] is True
    assert "password" not in db
    assert db["backupRetentionPeriod"] >= 1
    params = runs[stack].one("aws:rds/parameterGroup:ParameterGroup").inputs["parameters"]
    assert {p["name"]: p["value"] for p in params}["rds.force_ssl"] == "1"


def test_dev_database_is_cheap_and_disposable(runs: dict[str, Run]) -> None:
    db = _database(runs["dev"])
    assert not db.protect
    assert db.inputs["multiAz"] is False
    assert db.inputs["skipFinalSnapshot"] is True


@pytest.mark.parametrize(("stack", "tls"), [("dev", False), ("staging", True), ("prod", True)])
def test_cache_uses_tls_and_a_token_in_staging_and_prod(runs: dict[str, Run], stack: str, tls: bool) -> None:
    cache = runs[stack].one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert cache["atRestEncryptionEnabled"] is True
    assert cache.get("transitEncryptionEnabled", False) is tls
    assert bool(cache.get("authToken")) is tls
    url = runs[stack].outputs["cacheUrl"]
    assert url.startswith("rediss://:" if tls else "redis://")


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_registry_is_immutable_scanned_and_expires_old_images(runs: dict[str, Run], stack: str) -> None:
    repo = runs[stack].one("aws:ecr/repository:Repository").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    policy = json.loads(runs[stack].one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert {rule["selection"]["tagStatus"] for rule in policy["rules"]} == {"untagged", "any"}


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_addons_are_pinned_charts_and_prometheus_keeps_35_days(runs: dict[str, Run], stack: str) -> None:
    charts = {c.inputs["name"]: c.inputs for c in runs[stack].of_type("kubernetes:helm.sh/v4:Chart")}
    # prometheus-adapter only where the HPA scales on requests per second (staging, prod).
    scaling = CONFIG.get(stack).autoscaling
    per_pod_rate = scaling is not None and scaling.target_requests_per_second is not None
    assert per_pod_rate == (stack != "dev")
    assert set(charts) == set(CHARTS) - (set() if per_pod_rate else {"prometheus-adapter"})
    if per_pod_rate:
        adapter = charts["prometheus-adapter"]["values"]
        assert adapter["rules"]["custom"][0]["name"]["as"] == "http_requests_per_second"
        assert adapter["prometheus"]["url"] == "http://kube-prometheus-stack-prometheus.monitoring.svc"
    for name, chart in charts.items():
        assert chart["version"] == CHARTS[name].version
        assert chart["version"][0].isdigit() or chart["version"].startswith("v")
    prometheus = charts["kube-prometheus-stack"]["values"]["prometheus"]["prometheusSpec"]
    assert prometheus["retention"] == RETENTION == "35d"
    assert prometheus["ruleSelectorNilUsesHelmValues"] is False
    assert charts["prometheus-pushgateway"]["namespace"] == "monitoring"
    assert charts["prometheus-pushgateway"]["values"]["fullnameOverride"] == "prometheus-pushgateway"
    eso = charts["external-secrets"]["values"]["serviceAccount"]["annotations"]
    assert eso["eks.amazonaws.com/role-arn"].startswith("arn:")
    # Reloader rolls only what asks for it: the overlay's Deployments name their Secret.
    assert charts["reloader"]["values"]["reloader"]["autoReloadAll"] is False
    dashboards = runs[stack].of_type("kubernetes:core/v1:ConfigMap")
    dashboard_maps = [
        d for d in dashboards if d.inputs["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert sorted(d.inputs["metadata"]["name"] for d in dashboard_maps) == sorted(
        f"dashboard-{p.stem}" for p in DASHBOARDS.glob("*.json")
    )
    for config_map in dashboard_maps:
        (content,) = config_map.inputs["data"].values()
        assert json.loads(content)["uid"]


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_kustomize_directories_exist_and_point_at_the_right_overlay(runs: dict[str, Run], stack: str) -> None:
    directories = {d.inputs["directory"] for d in runs[stack].of_type("kubernetes:kustomize/v2:Directory")}
    assert directories == {str(K8S / "overlays" / stack), str(GATEWAY_DIRECTORY)}
    for directory in directories:
        assert (K8S / directory / "kustomization.yaml").is_file(), directory


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_secret_wiring_via_external_secrets(runs: dict[str, Run], stack: str) -> None:
    env = CONFIG.get(stack)
    store = runs[stack].one("kubernetes:external-secrets.io/v1:ClusterSecretStore").inputs
    assert store["spec"]["provider"]["aws"]["service"] == "SecretsManager"
    external = {
        e.inputs["metadata"]["name"]: e.inputs
        for e in runs[stack].of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    }
    app = external["reference-service-secrets"]
    assert app["metadata"]["namespace"] == env.namespace
    templates = app["spec"]["target"]["template"]["data"]
    assert {"DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "JWT_SECRET", "WEBHOOK_URL"} <= set(
        templates
    )
    assert templates["DATABASE_URL"].startswith("postgresql+asyncpg://reference_service_app:{{ .app_password")
    assert templates["MIGRATION_DATABASE_URL"].startswith("postgresql+asyncpg://reference_service_migrator:")
    assert app["spec"]["dataFrom"] == [{"extract": {"key": f"reference-service/{stack}/app"}}]
    # The role bootstrap reads the master credentials from the secret RDS manages.
    bootstrap = external["reference-service-db-roles"]["spec"]["data"]
    master = {d["secretKey"]: d["remoteRef"] for d in bootstrap if d["secretKey"] in ("username", "password")}
    assert {ref["property"] for ref in master.values()} == {"username", "password"}
    # The ARN the mock gives the RDS-managed secret (master_user_secrets[0].secret_arn).
    assert {ref["key"] for ref in master.values()} == {
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!database-postgres"
    }
    job = runs[stack].one("kubernetes:batch/v1:Job").inputs
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "reference-service-db-roles"}}]
    assert container["securityContext"]["runAsNonRoot"] is True
    # No secret value is written into any Kubernetes object of an environment stack.
    for resource in runs[stack].resources:
        text = json.dumps(resource.inputs)
        for value in TEST_SECRETS.values():
            if resource.type.startswith("kubernetes:"):
                assert value not in text, resource.name


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_budget_alerts_on_actual_and_forecast(runs: dict[str, Run], stack: str) -> None:
    budget = runs[stack].one("aws:budgets/budget:Budget").inputs
    config = stack_config(stack)["reference-platform:budget"]
    assert budget["limitAmount"] == f"{config['monthlyLimitUsd']:.2f}"
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:environment${stack}"]}]
    kinds = {n["notificationType"]: n for n in budget["notifications"]}
    assert set(kinds) == {"ACTUAL", "FORECASTED"}
    for notification in kinds.values():
        assert notification["subscriberEmailAddresses"] == config["recipients"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_cost_tags(runs: dict[str, Run], stack: str) -> None:
    config = stack_config(stack)
    taggable = [r for r in runs[stack].resources if is_taggable(r.type)]
    assert taggable
    environment = "preview" if stack.startswith("pr-") else stack
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        assert tags.get("environment") == environment, resource.name
        assert tags.get("owner") == config["reference-platform:owner"], resource.name
        assert tags.get("cost-center") == config["reference-platform:costCenter"], resource.name
        assert (tags.get("pr") == "123") if environment == "preview" else ("pr" not in tags), resource.name
    # Resources whose type takes no tags are left alone.
    assert not any("tags" in r.inputs for r in runs[stack].resources if r.type == "aws:ec2/route:Route")


def test_environment_outputs(runs: dict[str, Run]) -> None:
    for stack in ENVIRONMENT_STACKS:
        outputs = runs[stack].outputs
        env = CONFIG.get(stack)
        assert json.loads(outputs["kubeconfig"])["users"][0]["user"]["exec"]["command"] == "aws"
        assert outputs["clusterName"] == f"reference-service-{stack}"
        assert outputs["serviceUrl"] == env.base_url
        assert outputs["registryUrl"].endswith(f"/reference-service/{stack}")
        assert outputs["databaseEndpoint"]
        assert outputs["cacheEndpoint"]
        assert {"kubeconfig", "cacheUrl"} <= runs[stack].secret_outputs
    # Only dev hosts previews: only dev hands out the preview admin's secret.
    assert "previewAdminSecretArn" in runs["dev"].outputs
    assert "previewAdminSecretArn" not in runs["prod"].outputs


def test_preview_creates_no_network_cluster_or_database_server(runs: dict[str, Run]) -> None:
    run = runs["pr-123"]
    for type_token in AWS_SERVERS:
        assert run.of_type(type_token) == [], type_token
    assert {r.type for r in run.resources if r.type.startswith("aws:")} == {"aws:budgets/budget:Budget"}
    reference = run.one("pulumi:pulumi:StackReference").inputs
    assert reference["name"] == stack_config("pr-123")["reference-platform:devStack"]


def test_preview_gets_its_own_database_and_roles_on_the_dev_server(runs: dict[str, Run]) -> None:
    run = runs["pr-123"]
    server = run.one("pulumi:providers:postgresql").inputs
    assert server["host"] == DEV_OUTPUTS["databaseAddress"]
    assert server["username"] == "preview_admin"
    assert server["sslmode"] == "require"
    database = run.one("postgresql:index/database:Database").inputs
    assert database["name"] == "preview_pr_123"
    assert database["owner"] == "preview_pr_123_migrator"
    roles = {r.inputs["name"] for r in run.of_type("postgresql:index/role:Role")}
    assert roles == {"preview_pr_123_app", "preview_pr_123_migrator"}
    defaults = {
        d.inputs["objectType"]: d.inputs
        for d in run.of_type("postgresql:index/defaultPrivileges:DefaultPrivileges")
    }
    assert set(defaults["table"]["privileges"]) == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert defaults["table"]["owner"] == "preview_pr_123_migrator"
    assert defaults["table"]["role"] == "preview_pr_123_app"


def test_preview_deploys_the_overlay_in_its_namespace_with_the_pr_image(runs: dict[str, Run]) -> None:
    run = runs["pr-123"]
    directory = run.one("kubernetes:kustomize/v2:Directory").inputs
    assert directory["directory"] == str(K8S / "overlays" / "preview")
    assert directory["namespace"] == "reference-service-pr-123"
    secret = run.one("kubernetes:core/v1:Secret").inputs
    assert secret["metadata"] == {
        "name": "reference-service-secrets",
        "namespace": "reference-service-pr-123",
        "labels": {
            "preview.kit/pr": "123",
            "preview.kit/expires-at": secret["metadata"]["labels"]["preview.kit/expires-at"],
        },
    }
    data = secret["stringData"]
    assert data["DATABASE_URL"].startswith("postgresql+asyncpg://preview_pr_123_app:")
    assert data["DATABASE_URL"].endswith(f"@{DEV_OUTPUTS['databaseAddress']}:5432/preview_pr_123?ssl=require")
    assert data["MIGRATION_DATABASE_URL"].startswith("postgresql+asyncpg://preview_pr_123_migrator:")
    assert data["REDIS_URL"] == DEV_OUTPUTS["cacheUrl"]
    assert data["WEBHOOK_URL"] == TEST_SECRETS["webhookUrl"]
    outputs = run.outputs
    assert outputs["serviceUrl"] == "https://pr-123.preview.example.com"
    assert outputs["namespace"] == "reference-service-pr-123"
    assert outputs["image"] == PR_IMAGE
    ttl = CONFIG.get("preview").preview_ttl_hours
    assert ttl is not None
    assert int(run.started) + ttl * 3600 <= outputs["expiresAt"] <= run.finished + ttl * 3600
    assert secret["metadata"]["labels"]["preview.kit/expires-at"] == str(outputs["expiresAt"])
    # The first deployment's time, kept in state (ignore_changes) for `kit preview list`'s age.
    assert int(run.started) <= outputs["createdAt"] <= run.finished
    marker = run.one("random:index/randomString:RandomString")
    assert marker.inputs["keepers"] == {"deployedAt": str(outputs["createdAt"])}
    assert marker.ignore_changes == ("keepers",)  # later updates keep the first value


def test_preview_budget_counts_the_pull_requests_tag(runs: dict[str, Run]) -> None:
    budget = runs["pr-123"].one("aws:budgets/budget:Budget").inputs
    assert budget["name"] == "reference-service-pr-123"
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": ["user:pr$123"]}]


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_the_overlay_creates_the_namespace_pulumi_writes_into(runs: dict[str, Run], stack: str) -> None:
    """What Pulumi adds next to the overlay (ExternalSecrets, the role Job) lands in the overlay's
    own restricted namespace: rendered with `kubectl kustomize`, as Pulumi's Directory will."""
    import subprocess

    import yaml

    overlay = K8S / "overlays" / stack
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True, timeout=120
    )
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    added = [
        r
        for r in runs[stack].resources
        if r.type in ("kubernetes:external-secrets.io/v1:ExternalSecret", "kubernetes:batch/v1:Job")
    ]
    assert {r.inputs["metadata"]["namespace"] for r in added} == {namespace["metadata"]["name"]}
    # The Deployments read the Secret External Secrets writes, and every key they need is in it.
    refs = [
        env["valueFrom"]["secretKeyRef"]
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
        + o["spec"]["template"]["spec"].get("initContainers", [])
        for env in c.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    ]
    assert {ref["name"] for ref in refs} == {"reference-service-secrets"}
    (external,) = [r for r in added if r.inputs["metadata"]["name"] == "reference-service-secrets"]
    provided = set(external.inputs["spec"]["target"]["template"]["data"])
    required = {ref["key"] for ref in refs if not ref.get("optional")}
    assert required, "the Deployments read no secret key?"
    assert required <= provided, required - provided


def _gateway_objects() -> dict[str, list[dict[str, Any]]]:
    """k8s/platform/gateway as kustomize renders it, by kind."""
    from kit import k8s_checks

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in k8s_checks.render(GATEWAY_DIRECTORY):
        by_kind.setdefault(obj["kind"], []).append(obj)
    return by_kind


def test_the_deployed_gateway_directory_is_the_edge_the_config_names() -> None:
    edge = CONFIG.edge
    assert edge is not None
    objects = _gateway_objects()
    assert [c["metadata"]["name"] for c in objects["GatewayClass"]] == [edge.gateway_class] == ["eg"]
    (gateway,) = objects["Gateway"]
    assert (gateway["metadata"]["namespace"], gateway["metadata"]["name"]) == (
        edge.gateway_namespace,
        edge.gateway_name,
    )
    assert gateway["spec"]["gatewayClassName"] == edge.gateway_class
    assert [n["metadata"]["name"] for n in objects["Namespace"]] == [edge.gateway_namespace]
    (issuer,) = objects["ClusterIssuer"]
    assert issuer["metadata"]["name"] == edge.cluster_issuer == "letsencrypt"
    # DNS-01 on Route 53 with ambient credentials: the IRSA role of cert-manager, no key.
    (solver,) = issuer["spec"]["acme"]["solvers"]
    route53 = solver["dns01"]["route53"]
    assert not {"accessKeyID", "accessKeyIDSecretRef", "secretAccessKeySecretRef", "role"} & set(route53)
    for certificate in objects["Certificate"]:
        assert certificate["spec"]["issuerRef"]["name"] == edge.cluster_issuer


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_cert_manager_answers_dns01_in_route53_through_its_own_role(runs: dict[str, Run], stack: str) -> None:
    run = runs[stack]
    charts = {c.inputs["name"]: c.inputs for c in run.of_type("kubernetes:helm.sh/v4:Chart")}
    account = charts["cert-manager"]["values"]["serviceAccount"]
    assert account["name"] == "cert-manager"
    assert charts["cert-manager"]["namespace"] == "cert-manager"
    roles = {r.name: r.inputs for r in run.of_type("aws:iam/role:Role")}
    (role_name,) = [name for name in roles if name.endswith("-irsa-cert-manager")]
    (statement,) = json.loads(roles[role_name]["assumeRolePolicy"])["Statement"]
    assert {k.rsplit(":", 1)[1]: v for k, v in statement["Condition"]["StringEquals"].items()} == {
        "sub": "system:serviceaccount:cert-manager:cert-manager",
        "aud": "sts.amazonaws.com",
    }
    (policy,) = [p.inputs for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == role_name]
    statements = json.loads(policy["policy"])["Statement"]
    actions = {
        action
        for s in statements
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "route53:GetChange",
        "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets",
        "route53:ListHostedZonesByName",
    }
    (change,) = [s for s in statements if "route53:ChangeResourceRecordSets" in s["Action"]]
    assert change["Condition"]["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
    }
    # The platform Gateway (and its ClusterIssuer) is applied only once cert-manager runs.
    gateway = [d for d in run.of_type("kubernetes:kustomize/v2:Directory") if d.name == "platform-gateway"]
    assert [d.inputs["directory"] for d in gateway] == [str(GATEWAY_DIRECTORY)]


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_the_app_trusts_forwarded_headers_from_the_vpc_it_runs_in(stack: str) -> None:
    """Pods (the Envoy proxies too) get VPC addresses (VPC CNI): the VPC must be a trusted range."""
    import ipaddress

    settings = CONFIG.get(stack).infra
    assert settings is not None
    # What every overlay sets as FORWARDED_ALLOW_IPS (tests/k8s/test_k8s_security_settings.py).
    trusted = [ipaddress.ip_network(r) for r in CONFIG.gateway_proxy_cidrs]
    vpc = ipaddress.ip_network(settings.network.cidr)
    assert any(vpc.subnet_of(network) for network in trusted if network.version == 4), (vpc, trusted)


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_the_role_bootstrap_runs_the_services_own_script(runs: dict[str, Run], stack: str) -> None:
    """One definition of the roles: service/sql/bootstrap_roles.sql, for this environment's database."""
    from infra.database_roles import BOOTSTRAP_SQL

    settings = CONFIG.get(stack).infra
    assert settings is not None
    maps = [
        c.inputs
        for c in runs[stack].of_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"]["name"] == "reference-service-db-roles"
    ]
    (script,) = [m["data"]["bootstrap.sql"] for m in maps]
    assert script.startswith(BOOTSTRAP_SQL.read_text())
    assert ("preview_admin" in script) == settings.database.preview_admin
    (job,) = [j.inputs for j in runs[stack].of_type("kubernetes:batch/v1:Job")]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    command = container["command"][-1]
    assert f"-v db={settings.database.name} " in command
    assert command.endswith("-f /sql/bootstrap.sql")

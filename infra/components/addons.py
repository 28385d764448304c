"""The cluster add-ons the manifests assume, as Helm v4 charts with pinned versions.

metrics-server (the HPAs), Stakater Reloader (rolls pods when their Secret changes), Envoy
Gateway (GatewayClass `eg`, the Gateway API the overlays' HTTPRoutes attach to), cert-manager
(certificates, including the preview wildcard) and External Secrets Operator (Secrets Manager ->
Kubernetes Secrets through IRSA). The shared Gateway and the ClusterIssuer live in
k8s/platform/gateway and are applied from there (kustomize), unchanged; the issuer's Route 53
DNS-01 solver uses cert-manager's IRSA role (route53_dns01_policy).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import Cluster
from kit.paths import K8S

GATEWAY_DIRECTORY = K8S / "platform" / "gateway"
SECRET_STORE = "aws-secrets-manager"  # noqa: S105 (a ClusterSecretStore name, not a secret)
# cert-manager's controller service account (the chart's release name): the ClusterIssuer in
# k8s/platform/gateway answers DNS-01 challenges in Route 53 with this account's IAM role.
CERT_MANAGER_SERVICE_ACCOUNT = ("cert-manager", "cert-manager")


def route53_dns01_policy() -> str:
    """What cert-manager's DNS-01 solver needs in Route 53: TXT records under _acme-challenge only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
                {
                    "Effect": "Allow",
                    "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                    "Resource": "arn:aws:route53:::hostedzone/*",
                    "Condition": {
                        "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
                        "ForAllValues:StringLike": {
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]
                        },
                    },
                },
                {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
            ],
        }
    )


@dataclass(frozen=True)
class ChartPin:
    chart: str
    version: str
    repository: str | None  # None: `chart` is an oci:// reference
    namespace: str


# One place for every chart version the platform runs (bump here, nowhere else).
CHARTS: dict[str, ChartPin] = {
    "metrics-server": ChartPin(
        "metrics-server", "3.12.2", "https://kubernetes-sigs.github.io/metrics-server/", "kube-system"
    ),
    "envoy-gateway": ChartPin(
        "oci://docker.io/envoyproxy/gateway-helm", "v1.7.0", None, "envoy-gateway-system"
    ),
    "cert-manager": ChartPin("cert-manager", "v1.17.0", "https://charts.jetstack.io", "cert-manager"),
    "external-secrets": ChartPin(
        "external-secrets", "0.16.1", "https://charts.external-secrets.io", "external-secrets"
    ),
    # Rolls the app's pods when reference-service-secrets changes (the Deployments' annotation).
    "reloader": ChartPin("reloader", "2.1.4", "https://stakater.github.io/stakater-charts", "kube-system"),
    "kube-prometheus-stack": ChartPin(
        "kube-prometheus-stack", "77.0.0", "https://prometheus-community.github.io/helm-charts", "monitoring"
    ),
    "prometheus-pushgateway": ChartPin(
        "prometheus-pushgateway", "2.7.0", "https://prometheus-community.github.io/helm-charts", "monitoring"
    ),
    "prometheus-adapter": ChartPin(
        "prometheus-adapter", "4.11.0", "https://prometheus-community.github.io/helm-charts", "monitoring"
    ),
}


def chart(
    name: str, values: dict[str, Any], opts: pulumi.ResourceOptions, resource_name: str | None = None
) -> k8s.helm.v4.Chart:
    """A pinned chart from CHARTS, installed as release `name` in its namespace."""
    pin = CHARTS[name]
    return k8s.helm.v4.Chart(
        resource_name or name,
        chart=pin.chart,
        version=pin.version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=pin.repository) if pin.repository else None,
        namespace=pin.namespace,
        name=name,
        values=values,
        opts=opts,
    )


def namespace(
    name: str, opts: pulumi.ResourceOptions, labels: dict[str, str] | None = None
) -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace(
        name, metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=labels or {}), opts=opts
    )


@dataclass(frozen=True)
class AddonsArgs:
    cluster: Cluster
    region: str
    # Secrets Manager secrets External Secrets may read (nothing else).
    readable_secret_arns: Sequence[pulumi.Input[str]]
    gateway_directory: Path = GATEWAY_DIRECTORY


class Addons(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:Addons", name, None, opts)
        provider = args.cluster.provider
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        namespaces = {
            ns: namespace(ns, on_cluster)
            for ns in ("envoy-gateway-system", "cert-manager", "external-secrets")
        }

        def in_namespace(ns: str, *after: pulumi.Resource) -> pulumi.ResourceOptions:
            extra = [namespaces[ns]] if ns in namespaces else []
            return pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[*extra, *after])

        metrics_server = chart("metrics-server", {"replicas": 2}, in_namespace("kube-system"))
        # Only Deployments annotated secret.reloader.stakater.com/reload are rolled.
        reloader = chart("reloader", {"reloader": {"autoReloadAll": False}}, in_namespace("kube-system"))
        envoy_gateway = chart("envoy-gateway", {}, in_namespace("envoy-gateway-system"))
        cert_manager_namespace, cert_manager_account = CERT_MANAGER_SERVICE_ACCOUNT
        cert_manager_role = args.cluster.irsa_role(
            "cert-manager", cert_manager_namespace, cert_manager_account, inline_policy=route53_dns01_policy()
        )
        cert_manager = chart(
            "cert-manager",
            {
                "crds": {"enabled": True},
                "config": {"enableGatewayAPI": True},
                "serviceAccount": {
                    "name": cert_manager_account,
                    "annotations": {"eks.amazonaws.com/role-arn": cert_manager_role.arn},
                },
            },
            in_namespace("cert-manager", envoy_gateway),
        )

        secrets_policy = pulumi.Output.all(*args.readable_secret_arns).apply(
            lambda arns: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                            "Resource": list(arns),
                        }
                    ],
                }
            )
        )
        eso_role = args.cluster.irsa_role(
            "external-secrets", "external-secrets", "external-secrets", inline_policy=secrets_policy
        )
        external_secrets = chart(
            "external-secrets",
            {
                "installCRDs": True,
                "serviceAccount": {
                    "name": "external-secrets",
                    "annotations": {"eks.amazonaws.com/role-arn": eso_role.arn},
                },
            },
            in_namespace("external-secrets"),
        )
        # The controller authenticates with its own service account (IRSA): no key in the store.
        store = k8s.apiextensions.CustomResource(
            "secret-store",
            api_version="external-secrets.io/v1",
            kind="ClusterSecretStore",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SECRET_STORE),
            spec={"provider": {"aws": {"service": "SecretsManager", "region": args.region}}},
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[external_secrets]),
        )
        gateway = k8s.kustomize.v2.Directory(
            "platform-gateway",
            directory=str(args.gateway_directory),
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[envoy_gateway, cert_manager]
            ),
        )
        self.ready = [metrics_server, reloader, envoy_gateway, cert_manager, external_secrets, store, gateway]
        self.register_outputs({})

"""EKS: control plane, OIDC provider for IRSA, a managed node group, the AWS add-ons."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from kit.environments import ClusterSettings

EKS_POLICY = "arn:aws:iam::aws:policy/"


@dataclass(frozen=True)
class ClusterArgs:
    name: str
    region: str
    settings: ClusterSettings
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    admin_role_arns: Sequence[str] = field(default_factory=list)


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def kubeconfig_json(name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no long-lived credential in it)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority},
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", name, "--region", region],
                        }
                    },
                }
            ],
        }
    )


class Cluster(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    node_group: aws.eks.NodeGroup
    oidc_provider: aws.iam.OpenIdConnectProvider
    node_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:infra:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._name = name

        control_plane_role = aws.iam.Role(
            f"{name}-control-plane", assume_role_policy=_assume_role_policy("eks.amazonaws.com"), opts=child
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=control_plane_role.name,
            policy_arn=f"{EKS_POLICY}AmazonEKSClusterPolicy",
            opts=child,
        )
        # Envelope encryption of Kubernetes Secrets with a key of our own.
        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"{args.name}: Kubernetes Secrets envelope encryption",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=child,
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.name,
            version=args.settings.kubernetes_version,
            role_arn=control_plane_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[*args.private_subnet_ids, *args.public_subnet_ids],
                endpoint_private_access=True,
                endpoint_public_access=True,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
            ),
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            opts=child,
        )
        issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer if ids and ids[0].oidcs else "")
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        self._issuer_host = issuer.apply(lambda url: url.removeprefix("https://"))

        node_role = aws.iam.Role(
            f"{name}-nodes", assume_role_policy=_assume_role_policy("ec2.amazonaws.com"), opts=child
        )
        for policy in (
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryReadOnly",
        ):
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{policy}", role=node_role.name, policy_arn=f"{EKS_POLICY}{policy}", opts=child
            )
        nodes = args.settings.node_group
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=list(args.private_subnet_ids),
            instance_types=nodes.instance_types,
            disk_size=nodes.disk_size_gib,
            capacity_type="ON_DEMAND",
            ami_type="AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=nodes.min_size, desired_size=nodes.desired_size, max_size=nodes.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            # The cluster autoscaler (or a person) changes the desired size; do not undo it.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
        )

        addon_opts = pulumi.ResourceOptions(parent=self, depends_on=[self.node_group])
        # The overlays ship NetworkPolicies (default deny); the VPC CNI enforces them only when asked.
        addon_settings = {
            "vpc-cni": json.dumps({"enableNetworkPolicy": "true"}),
            "coredns": None,
            "kube-proxy": None,
        }
        for addon, configuration in addon_settings.items():
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=cluster.name,
                addon_name=addon,
                configuration_values=configuration,
                resolve_conflicts_on_update="OVERWRITE",
                opts=addon_opts,
            )
        # Persistent volumes (Prometheus keeps 35 days of samples) need the EBS CSI driver.
        ebs_role = self.irsa_role(
            "ebs-csi",
            "kube-system",
            "ebs-csi-controller-sa",
            managed_policy=f"{EKS_POLICY}service-role/AmazonEBSCSIDriverPolicy",
        )
        aws.eks.Addon(
            f"{name}-aws-ebs-csi-driver",
            cluster_name=cluster.name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=ebs_role.arn,
            resolve_conflicts_on_update="OVERWRITE",
            opts=addon_opts,
        )
        for index, role_arn in enumerate(args.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=role_arn,
                type="STANDARD",
                opts=child,
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=role_arn,
                policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
            )

        self.cluster_name = cluster.name
        self.node_security_group_id = cluster.vpc_config.cluster_security_group_id
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
                lambda values: kubeconfig_json(values[0], values[1], values[2], args.region)
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_group]),
        )
        self.register_outputs({"clusterName": cluster.name, "kubeconfig": self.kubeconfig})

    def irsa_role(
        self,
        purpose: str,
        namespace: str,
        service_account: str,
        *,
        managed_policy: str | None = None,
        inline_policy: pulumi.Input[str] | None = None,
    ) -> aws.iam.Role:
        """An IAM role only `namespace/service_account` may assume (IAM Roles for Service Accounts)."""
        subject = f"system:serviceaccount:{namespace}:{service_account}"
        trust = pulumi.Output.all(self.oidc_provider.arn, self._issuer_host).apply(
            lambda values: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": values[0]},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{values[1]}:sub": subject,
                                    f"{values[1]}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            )
        )
        role = aws.iam.Role(
            f"{self._name}-irsa-{purpose}", assume_role_policy=trust, opts=pulumi.ResourceOptions(parent=self)
        )
        if managed_policy:
            aws.iam.RolePolicyAttachment(
                f"{self._name}-irsa-{purpose}",
                role=role.name,
                policy_arn=managed_policy,
                opts=pulumi.ResourceOptions(parent=self),
            )
        if inline_policy is not None:
            aws.iam.RolePolicy(
                f"{self._name}-irsa-{purpose}",
                role=role.id,
                policy=inline_policy,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return role

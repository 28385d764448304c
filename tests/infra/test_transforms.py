"""The transforms the real engine also applies to children of Helm charts and kustomize
directories (which the mocks never render): tested directly on the objects they would see."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.transforms import image_transform, is_taggable, stack_transform

REPOSITORY = "ghcr.io/example/reference-service"
IMAGE = f"{REPOSITORY}@sha256:" + "d" * 64


def apply(transform: Any, type_: str, props: dict[str, Any], custom: bool = True) -> dict[str, Any] | None:
    result = transform(pulumi.ResourceTransformArgs(custom, type_, "name", props, pulumi.ResourceOptions()))
    return None if result is None else dict(result.props)


def pod(*images: str, init: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    }
    if init:
        spec["initContainers"] = [{"name": "migrate", "image": image} for image in init]
    return {"template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}}


def test_image_is_swapped_in_the_services_containers_only() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": pod(f"{REPOSITORY}:0.1.0", "envoyproxy/envoy:v1", init=(f"{REPOSITORY}:0.1.0",)),
    }
    props = apply(image_transform(REPOSITORY, IMAGE), "kubernetes:apps/v1:Deployment", deployment)
    assert props is not None
    spec = props["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["containers"]] == [IMAGE, "envoyproxy/envoy:v1"]
    assert [c["image"] for c in spec["initContainers"]] == [IMAGE]
    assert props["spec"]["template"]["metadata"] == {"labels": {"a": "b"}}
    # A look-alike repository is not ours.
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": pod(f"{REPOSITORY}-sidecar:1")}
    props = apply(image_transform(REPOSITORY, IMAGE), "kubernetes:apps/v1:Deployment", other)
    assert props is not None
    assert props["spec"]["template"]["spec"]["containers"][0]["image"] == f"{REPOSITORY}-sidecar:1"


def test_image_reaches_cronjobs_and_leaves_other_kinds_alone() -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": pod(f"{REPOSITORY}:0.1.0")}},
    }
    props = apply(image_transform(REPOSITORY, IMAGE), "kubernetes:batch/v1:CronJob", cronjob)
    assert props is not None
    assert props["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert props["spec"]["schedule"] == "* * * * *"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"IMAGE": f"{REPOSITORY}:0.1.0"}}
    assert apply(image_transform(REPOSITORY, IMAGE), "kubernetes:core/v1:ConfigMap", config_map) is None


def test_stack_transform_tags_aws_and_labels_kubernetes() -> None:
    transform = stack_transform({"environment": "preview", "pr": "7"}, {"preview.kit/pr": "7"})
    vpc = apply(
        transform, "aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16", "tags": {"Name": "x", "pr": "stale"}}
    )
    assert vpc == {"cidrBlock": "10.0.0.0/16", "tags": {"Name": "x", "environment": "preview", "pr": "7"}}
    assert apply(transform, "aws:ec2/route:Route", {"routeTableId": "r"}) is None  # takes no tags
    service = apply(
        transform, "kubernetes:core/v1:Service", {"metadata": {"name": "s", "labels": {"app": "a"}}}
    )
    assert service == {"metadata": {"name": "s", "labels": {"app": "a", "preview.kit/pr": "7"}}}
    # Components (a kustomize directory) are not objects: their children get the labels instead.
    assert apply(transform, "kubernetes:kustomize/v2:Directory", {"directory": "d"}, custom=False) is None


def test_environment_stacks_label_nothing() -> None:
    transform = stack_transform({"environment": "prod"}, {})
    assert apply(transform, "kubernetes:core/v1:Service", {"metadata": {"name": "s"}}) is None


def test_taggable_comes_from_the_aws_sdk() -> None:
    assert is_taggable("aws:rds/instance:Instance")
    assert is_taggable("aws:budgets/budget:Budget")
    assert not is_taggable("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not is_taggable("aws:nosuchmodule/thing:Thing")
    assert not is_taggable("kubernetes:core/v1:Namespace")
    assert not is_taggable("random:index/randomPassword:RandomPassword")

"""Resource transforms: cost-allocation tags and preview labels (once, for the whole stack), image.

The stack transform reaches every resource, children of Helm charts and kustomize directories
included, so no component has to remember to tag what it creates.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from functools import cache
from typing import Any

import pulumi

# Kubernetes kinds whose pod template runs the service's image.
WORKLOAD_KINDS = frozenset({"Deployment", "Job", "CronJob"})


@cache
def is_taggable(type_token: str) -> bool:
    """Whether an AWS resource type takes `tags` (read from the pulumi_aws SDK's Args class)."""
    package, _, rest = type_token.partition(":")
    if package != "aws" or ":" not in rest:
        return False
    module_path, _, class_name = rest.partition(":")
    module = module_path.split("/")[0]
    try:
        with warnings.catch_warnings():  # the SDK warns about its own deprecated classes on import
            warnings.simplefilter("ignore", DeprecationWarning)
            sdk = importlib.import_module("pulumi_aws" if module == "index" else f"pulumi_aws.{module}")
    except ImportError:
        return False
    args = getattr(sdk, f"{class_name}Args", None)
    return args is not None and hasattr(args, "tags")


def _merged(existing: Any, extra: Mapping[str, str]) -> Any:
    if existing is None or isinstance(existing, dict):
        return {**(existing or {}), **extra}
    return pulumi.Output.from_input(existing).apply(lambda value: {**(value or {}), **extra})


def stack_transform(tags: Mapping[str, str], labels: Mapping[str, str]) -> pulumi.ResourceTransform:
    """Cost-allocation `tags` on every taggable AWS resource, `labels` on every Kubernetes object."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props = dict(args.props)
        if is_taggable(args.type_):
            props["tags"] = _merged(props.get("tags"), tags)
        elif labels and args.custom and args.type_.startswith("kubernetes:") and "metadata" in props:
            metadata = props["metadata"]
            if isinstance(metadata, dict):
                props["metadata"] = {**metadata, "labels": _merged(metadata.get("labels"), labels)}
            else:
                props["metadata"] = pulumi.Output.from_input(metadata).apply(
                    lambda m: {**(m or {}), "labels": {**((m or {}).get("labels") or {}), **labels}}
                )
        else:
            return None
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def _retag(containers: list[dict[str, Any]], repository: str, image: str) -> list[dict[str, Any]]:
    return [
        {**c, "image": image}
        if str(c.get("image", "")).startswith((f"{repository}:", f"{repository}@"))
        else c
        for c in containers
    ]


def image_transform(repository: str, image: str) -> pulumi.ResourceTransform:
    """Run `image` in every container whose image comes from `repository` (the overlay's image)."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props = dict(args.props)
        if not args.type_.startswith("kubernetes:") or props.get("kind") not in WORKLOAD_KINDS:
            return None
        spec = props.get("spec")
        if not isinstance(spec, dict):
            return None
        holder = spec
        if props.get("kind") == "CronJob":
            holder = spec.get("jobTemplate", {}).get("spec", {})
        pod = holder.get("template", {}).get("spec")
        if not isinstance(pod, dict):
            return None
        pod = {**pod}
        for key in ("containers", "initContainers"):
            if isinstance(pod.get(key), list):
                pod[key] = _retag(pod[key], repository, image)
        new_holder = {**holder, "template": {**holder["template"], "spec": pod}}
        if props.get("kind") == "CronJob":
            props["spec"] = {**spec, "jobTemplate": {**spec["jobTemplate"], "spec": new_holder}}
        else:
            props["spec"] = new_holder
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform

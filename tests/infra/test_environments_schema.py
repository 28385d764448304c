"""config/environments.yaml schema (kit/environments.py): every invalid value gets its clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kit import environments
from kit.environments import EnvironmentsError
from kit.paths import CONFIG
from testsupport.documents import with_changes

RAW: dict[str, Any] = yaml.safe_load((CONFIG / "environments.yaml").read_text())


def changed(path: str, value: Any) -> dict[str, Any]:
    """The committed file with one key set (value ... deletes it)."""
    return with_changes(RAW, {path: value})


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(EnvironmentsError) as caught:
        environments.parse(raw)
    return caught.value.problems


def test_the_committed_file_is_valid() -> None:
    config = environments.parse(RAW)
    assert set(config.environments) == {"dev", "staging", "prod", "preview", "ci"}
    assert all(config.get(name).infra is not None for name in ("dev", "staging", "prod"))
    assert config.get("preview").for_pull_request(5).namespace == "reference-service-pr-5"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "environments.prod.replicas",
            3,
            "environments.prod.replicas: cannot be set while autoscaling is on",
        ),
        ("environments.prod.autoscaling.min", 20, "environments.prod.autoscaling.min: 20 is above max 12"),
        (
            "environments.prod.autoscaling.min",
            0,
            "environments.prod.autoscaling.min: Input should be greater than or equal to 1",
        ),
        (
            "environments.prod.autoscalling",
            {},
            "environments.prod.autoscalling: Extra inputs are not permitted",
        ),
        (
            "environments.dev.log_level",
            "LOUD",
            "environments.dev.log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        (
            "environments.dev.resources.api.cpu_request",
            ...,
            "environments.dev.resources.api.cpu_request: Field required",
        ),
        (
            "environments.dev.resources.db",
            {},
            "environments.dev.resources.db: Input should be 'api' or 'worker'",
        ),
        (
            "environments.preview.namespace_template",
            "preview",
            "environments.preview.namespace_template: 'preview' has no {pr} placeholder",
        ),
        (
            "environments.preview.host_template",
            ...,
            "environments.preview.namespace_template: needs host_template too",
        ),
        (
            "environments.dev.preview_ttl_hours",
            5,
            "environments.dev.preview_ttl_hours: only per-pull-request environments",
        ),
        (
            "environments.prod.quota",
            {"cpu": "2", "memory": "2Gi", "pods": 8},
            "environments.prod.quota: only per-pull-request environments",
        ),
        ("environments.preview.quota.pods", 0, "environments.preview.quota.pods: Input should be greater"),
        (
            "environments.prod.load_testing",
            {"rate_limits": {"login": "100/minute"}},
            "environments.prod.load_testing: never in prod",
        ),
        (
            "environments.prod.min_zones",
            1,
            "environments.prod.min_zones: Input should be greater than or equal to 2",
        ),
        (
            "environments.prod.min_zones",
            4,
            "environments.prod.min_zones: 4 is above infra.network.availability_zones 3",
        ),
        (
            "loadtest_namespace",
            ...,
            "environments.staging.load_testing: needs a top-level loadtest_namespace",
        ),
        (
            "capacity.target_fraction",
            1.5,
            "capacity.target_fraction: Input should be less than or equal to 1",
        ),
        ("capacity.knee_rps_per_pod", 0, "capacity.knee_rps_per_pod: Input should be greater than 0"),
        ("edge.gateway.name", ..., "edge.gateway.name: Field required"),
        ("edge.gateway_name", "platform", "edge.gateway_name: Extra inputs are not permitted"),
        (
            "edge.proxy_peer.pod_labels",
            {},
            "edge.proxy_peer.pod_labels: Dictionary should have at least 1 item",
        ),
        ("tracing_collector.port", 0, "tracing_collector.port: Input should be greater than or equal to 1"),
        (
            "environments.preview.infra",
            RAW["environments"]["dev"]["infra"],
            "environments.preview.infra: previews create no infrastructure",
        ),
        (
            "environments.ci.namespace",
            "ci",
            "environments.ci.local: a loopback environment has no namespace and no infra",
        ),
        (
            "environments.prod.infra.network.nat",
            "per_az",
            "environments.prod.infra.network.nat: Input should be 'single' or 'one_per_az'",
        ),
        (
            "environments.prod.infra.network.cidr",
            "10.0.0.0/24",
            "environments.prod.infra.network.cidr: 10.0.0.0/24 must be an IPv4 network of /20 or larger",
        ),
        (
            "environments.prod.infra.network.cidr",
            "banana",
            "environments.prod.infra.network.cidr: 'banana' does not appear to be an IPv4 or IPv6 network",
        ),
        (
            "environments.prod.infra.cluster.node_group.desired_size",
            20,
            "environments.prod.infra.cluster.node_group.desired_size: "
            "needs min_size <= desired_size <= max_size (got 3 <= 20 <= 9)",
        ),
        (
            "environments.prod.infra.database.final_snapshot",
            False,
            "environments.prod.infra.database.protect: "
            "a protected database needs deletion_protection and final_snapshot too",
        ),
        (
            "environments.prod.infra.database.max_allocated_storage_gib",
            20,
            "environments.prod.infra.database.max_allocated_storage_gib: is below allocated_storage_gib",
        ),
        (
            "environments.prod.infra.database.backup_retention_days",
            0,
            "environments.prod.infra.database.backup_retention_days: "
            "Input should be greater than or equal to 1",
        ),
        (
            "environments.prod.infra.database.name",
            "Reference-Service",
            "environments.prod.infra.database.name: String should match pattern",
        ),
        (
            "environments.prod.infra.database.instance_class",
            "m6g.large",
            "environments.prod.infra.database.instance_class: String should match pattern '^db\\.'",
        ),
        (
            "environments.dev.infra.cache.auth_token",
            True,
            "environments.dev.infra.cache.auth_token: ElastiCache accepts an auth token only with tls: true",
        ),
        (
            "environments.prod.infra.cache.nodes",
            1,
            "environments.prod.infra.cache.multi_az: needs nodes >= 2",
        ),
        (
            "environments.staging.infra.cache.engine",
            "memcached",
            "environments.staging.infra.cache.engine: Extra inputs are not permitted",
        ),
        ("environments.dev.name", "other", "environments.dev.name: the key is the name; remove it"),
        ("image", ..., "image: Field required"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(path: str, value: Any, expected: str) -> None:
    found = problems(changed(path, value))
    assert any(line.startswith(expected) for line in found), found


def test_tracing_needs_the_collector() -> None:
    raw = changed("tracing_collector", ...)
    raw["environments"]["staging"]["tracing"] = True
    assert problems(raw) == ["environments.staging.tracing: true needs a top-level tracing_collector"]


def test_the_edge_and_collector_are_read_as_the_overlays_use_them() -> None:
    config = environments.parse(RAW)
    assert config.edge is not None
    assert (config.edge.gateway_class, config.edge.gateway_namespace, config.edge.gateway_name) == (
        "eg",
        "gateway-system",
        "platform",
    )
    assert config.edge.cluster_issuer == "letsencrypt"
    assert config.tracing_collector is not None
    assert config.tracing_collector.endpoint == "http://otel-collector.observability.svc.cluster.local:4318"
    preview = config.get("preview")
    assert preview.quota is not None
    assert (preview.quota.cpu, preview.quota.memory, preview.quota.pods) == ("2", "2Gi", 8)


def test_load_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "environments.yaml"
    bad.write_text(yaml.safe_dump(changed("environments.prod.replicas", 3)))
    with pytest.raises(EnvironmentsError) as caught:
        environments.load(bad)
    assert caught.value.problems == [
        "environments.yaml: environments.prod.replicas: cannot be set while autoscaling is on "
        "(the HPA's min/max own the replica count)"
    ]
    bad.write_text("environments: [")
    with pytest.raises(EnvironmentsError, match=r"environments\.yaml"):
        environments.load(bad)

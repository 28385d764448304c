"""kube-prometheus-stack (35 days of samples), the Pushgateway, the dashboards from dashboards/.

The alert rules reach Prometheus with each overlay (k8s/components/alerting: the PrometheusRule
generated from alerts/), so they are deployed with the app and never copied here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.components.addons import chart, namespace
from kit.paths import DASHBOARDS, K8S

# The SLO rules look back 30 days (alerts/slo.yaml windows); 5 days of margin so a window is
# always complete, even right after an outage of the TSDB.
RETENTION = "35d"
NAMESPACE = "monitoring"
DASHBOARD_LABEL = "grafana_dashboard"
# The rule that turns http_requests_total into the HPA's Pods metric (kept next to the HPA).
ADAPTER_RULES = K8S / "components" / "autoscaling" / "prometheus-adapter-rules.yaml"
PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc"


@dataclass(frozen=True)
class ObservabilityArgs:
    provider: k8s.Provider
    environment: str
    # prometheus-adapter, where an HPA scales on requests per second (else it never scales down).
    custom_metrics: bool
    dashboards_dir: Path = DASHBOARDS
    storage_gib: int = 100


def prometheus_values(environment: str, storage_gib: int) -> dict[str, object]:
    return {
        "prometheus": {
            "prometheusSpec": {
                "retention": RETENTION,
                "retentionSize": f"{int(storage_gib * 0.85)}GB",
                "externalLabels": {"environment": environment},
                # Pick up every ServiceMonitor / PrometheusRule, not only the chart's own.
                "ruleSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{storage_gib}Gi"}},
                        }
                    }
                },
            }
        },
        "grafana": {
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                }
            }
        },
    }


def adapter_values(rules_file: Path = ADAPTER_RULES) -> dict[str, Any]:
    rules = yaml.safe_load(rules_file.read_text())["rules"]
    return {
        "prometheus": {"url": PROMETHEUS_URL, "port": 9090},
        "rules": {"default": False, "custom": rules},
    }


class Observability(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:infra:Observability", name, None, opts)
        # node-exporter needs the host's network and PID namespace: this namespace is privileged.
        monitoring = namespace(
            NAMESPACE,
            pulumi.ResourceOptions(parent=self, provider=args.provider),
            labels={"pod-security.kubernetes.io/enforce": "privileged"},
        )
        in_monitoring = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[monitoring])
        stack = chart(
            "kube-prometheus-stack", prometheus_values(args.environment, args.storage_gib), in_monitoring
        )
        pushgateway = chart(
            "prometheus-pushgateway",
            {"fullnameOverride": "prometheus-pushgateway", "serviceMonitor": {"enabled": True}},
            pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[monitoring, stack]),
        )
        dashboards = [
            k8s.core.v1.ConfigMap(
                f"dashboard-{path.stem}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"dashboard-{path.stem}", namespace=NAMESPACE, labels={DASHBOARD_LABEL: "1"}
                ),
                data={path.name: path.read_text()},
                opts=in_monitoring,
            )
            for path in sorted(args.dashboards_dir.glob("*.json"))
        ]
        self.ready = [stack, pushgateway, *dashboards]
        if args.custom_metrics:
            self.ready.append(
                chart(
                    "prometheus-adapter",
                    adapter_values(),
                    pulumi.ResourceOptions(
                        parent=self, provider=args.provider, depends_on=[monitoring, stack]
                    ),
                )
            )
        self.register_outputs({})

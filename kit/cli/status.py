"""`kit status --env <env>`: is it up, is it rolling out, is it burning budget? One verdict.

Verdict: `unhealthy` (exit 1) when a workload has no available replica or fewer than desired
after its rollout, a container crash-loops or cannot start, readiness answers 503, a critical
alert fires, a page-level burn-rate pair is over its threshold, or the synthetic journey fails;
`degraded` (exit 0) for a rollout in progress, the HPA at its maximum, a PDB that allows no
disruption, warning alerts or ticket-level burn; else `healthy`. Prometheus or Alertmanager
asked for but unreachable: the rest is still shown and the exit code is 4 (unless unhealthy).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kit.cli import envs, kube, output
from kit.cli.errors import FAILED, OK, UNREACHABLE, KitError
from kit.cli.prom import Prometheus, alertmanager_alerts

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
INFO = "info"  # worth saying, changes no verdict
_RANK = {INFO: 0, HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
# Waiting reasons that mean a container will not come up by itself.
STUCK_REASONS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
}
API_SERVICE_PORT = "http"
READINESS_PATH = "health/ready"


@dataclass
class Finding:
    level: str
    message: str


@dataclass
class Report:
    environment: str
    namespace: str
    context: str
    workloads: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    autoscaler: dict[str, Any] | None = None
    disruption_budgets: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alerts_source: str | None = None
    burn_rates: list[dict[str, Any]] = field(default_factory=list)
    synthetic: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def add(self, level: str, message: str) -> None:
        self.findings.append(Finding(level, message))

    @property
    def verdict(self) -> str:
        worst = max((f.level for f in self.findings), key=_RANK.__getitem__, default=HEALTHY)
        return HEALTHY if worst == INFO else worst


def _age(timestamp: str | None, now: datetime) -> str:
    if not timestamp:
        return "-"
    seconds = (now - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
    return human_duration(seconds)


def human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rollout_state(deployment: dict[str, Any]) -> str:
    """'complete', 'rolling out' or 'stalled', as `kubectl rollout status` judges it."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    for condition in status.get("conditions", []):
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return "stalled"
    desired = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return "rolling out"
    updated = status.get("updatedReplicas", 0)
    if (
        updated < desired
        or status.get("replicas", 0) > updated
        or status.get("availableReplicas", 0) < updated
    ):
        return "rolling out"
    return "complete"


def _workload(report: Report, deployment: dict[str, Any]) -> None:
    from kit.k8s_overlays import API_DEPLOYMENT

    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    name = deployment["metadata"]["name"]
    desired = spec.get("replicas", 1)
    state = rollout_state(deployment)
    available = status.get("availableReplicas", 0)
    containers = spec.get("template", {}).get("spec", {}).get("containers", [])
    report.workloads.append(
        {
            "name": name,
            "desired": desired,
            "ready": status.get("readyReplicas", 0),
            "updated": status.get("updatedReplicas", 0),
            "available": available,
            "rollout": state,
            "revision": deployment["metadata"]
            .get("annotations", {})
            .get("deployment.kubernetes.io/revision"),
            "image": containers[0]["image"] if containers else None,
        }
    )
    if desired > 0 and available == 0:
        what = "the API serves nothing" if name == API_DEPLOYMENT else "no worker delivers events"
        report.add(UNHEALTHY, f"{name}: 0 of {desired} replicas available ({what})")
    elif state == "stalled":
        report.add(UNHEALTHY, f"{name}: rollout stalled (progress deadline exceeded)")
    elif state == "rolling out":
        report.add(DEGRADED, f"{name}: rollout in progress")
    elif available < desired:
        report.add(UNHEALTHY, f"{name}: {available} of {desired} replicas available")


def _pods(report: Report, pods: list[dict[str, Any]], now: datetime) -> None:
    for pod in pods:
        status = pod.get("status", {})
        statuses = status.get("initContainerStatuses", []) + status.get("containerStatuses", [])
        restarts = sum(c.get("restartCount", 0) for c in statuses)
        reasons = []
        stuck = None
        for container in statuses:
            waiting = container.get("state", {}).get("waiting")
            if waiting and waiting.get("reason"):
                reasons.append(f"{container['name']}: {waiting['reason']}")
                if waiting["reason"] in STUCK_REASONS:
                    stuck = f"{container['name']} {waiting['reason']}"
            last = container.get("lastState", {}).get("terminated")
            if last and container.get("restartCount", 0):
                reasons.append(
                    f"{container['name']} last exit: {last.get('reason', '?')} "
                    f"(code {last.get('exitCode', '?')})"
                )
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
        )
        labels = pod["metadata"].get("labels", {})
        name = pod["metadata"]["name"]
        report.pods.append(
            {
                "name": name,
                "component": labels.get("app.kubernetes.io/component"),
                "phase": status.get("phase"),
                "ready": ready,
                "restarts": restarts,
                "reasons": reasons,
                "age": _age(pod["metadata"].get("creationTimestamp"), now),
            }
        )
        if stuck:
            report.add(UNHEALTHY, f"pod {name}: {stuck} ({restarts} restarts)")


def _autoscaler(report: Report, hpa: dict[str, Any]) -> None:
    spec, status = hpa.get("spec", {}), hpa.get("status", {})
    current, maximum = status.get("currentReplicas", 0), spec.get("maxReplicas")
    report.autoscaler = {
        "name": hpa["metadata"]["name"],
        "current": current,
        "desired": status.get("desiredReplicas", 0),
        "min": spec.get("minReplicas", 1),
        "max": maximum,
    }
    if maximum is not None and status.get("desiredReplicas", current) >= maximum:
        report.add(
            DEGRADED, f"HPA {hpa['metadata']['name']} at its maximum ({maximum} replicas): no headroom"
        )


def _disruption_budgets(report: Report, pdbs: list[dict[str, Any]]) -> None:
    for pdb in pdbs:
        status = pdb.get("status", {})
        entry = {
            "name": pdb["metadata"]["name"],
            "allowed": status.get("disruptionsAllowed", 0),
            "healthy": status.get("currentHealthy", 0),
            "desired_healthy": status.get("desiredHealthy", 0),
        }
        report.disruption_budgets.append(entry)
        if entry["allowed"] == 0:
            report.add(DEGRADED, f"PDB {entry['name']}: no disruption allowed (node drains will wait)")


def _health(report: Report, cluster: kube.Cluster, url: str | None, timeout: float) -> None:
    """GET /health/ready: at --url, else through the API server's proxy to the Service."""
    from kit.k8s_overlays import SERVICE

    if url:
        import httpx

        target = url.rstrip("/") + "/" + READINESS_PATH
        try:
            response = httpx.get(target, timeout=timeout)
        except httpx.HTTPError as error:
            report.health = {"source": target, "status": None, "body": None, "error": str(error)}
            report.add(UNHEALTHY, f"health: {target} unreachable: {error}")
            return
        code, text = response.status_code, response.text
    else:
        target = f"service proxy {SERVICE}:{API_SERVICE_PORT}/{READINESS_PATH}"
        code, text = cluster.service_get(
            f"{SERVICE}:{API_SERVICE_PORT}", report.namespace, READINESS_PATH, timeout
        )
        if code != 200 and '"checks"' not in text:
            # Not the app's answer: RBAC (services/proxy), no endpoints, or a NetworkPolicy that
            # keeps the API server out. Pod readiness above still tells the story.
            report.health = {
                "source": target,
                "status": code,
                "body": None,
                "error": kube.status_message(text),
            }
            report.add(
                INFO, f"health endpoint not reachable through the API server ({code}); see pod readiness"
            )
            return
    import json

    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text.strip()[:200]
    report.health = {"source": target, "status": code, "body": body}
    if code != 200:
        checks = body.get("checks") if isinstance(body, dict) else body
        report.add(UNHEALTHY, f"readiness answered {code}: {checks}")


def _prometheus(report: Report, prometheus: Prometheus, env: str) -> None:
    from kit import slo

    spec = slo.load()
    try:
        objectives = spec.objectives(env)
    except slo.SpecError:
        objectives = spec.objectives()
    budgets = {
        "availability": objectives.availability_error_budget,
        "latency": objectives.latency_error_budget,
    }
    ns = report.namespace

    def ratios(window: int) -> dict[str, float]:
        name = f"slo:sli_error:ratio_rate{slo.format_duration(window)}"
        return {
            labels.get("slo", "?"): value
            for labels, value in prometheus.vector(f'{name}{{namespace="{ns}"}}')
        }

    cache: dict[int, dict[str, float]] = {}
    for window in spec.burn_rate_windows:
        for seconds in (window.long_seconds, window.short_seconds):
            if seconds not in cache:
                cache[seconds] = ratios(seconds)
        for name, budget in budgets.items():
            long_ratio, short_ratio = (
                cache[window.long_seconds].get(name),
                cache[window.short_seconds].get(name),
            )
            long_burn = None if long_ratio is None else long_ratio / budget
            short_burn = None if short_ratio is None else short_ratio / budget
            burning = (
                long_burn is not None
                and short_burn is not None
                and long_burn > window.burn_rate
                and short_burn > window.burn_rate
            )
            report.burn_rates.append(
                {
                    "slo": name,
                    "windows": f"{slo.format_duration(window.long_seconds)}/"
                    f"{slo.format_duration(window.short_seconds)}",
                    "severity": window.severity,
                    "burn_long": long_burn,
                    "burn_short": short_burn,
                    "threshold": window.burn_rate,
                    "burning": burning,
                }
            )
            if burning:
                level = UNHEALTHY if window.severity == "critical" else DEGRADED
                report.add(
                    level,
                    f"{name} SLO burning {long_burn:.1f}x over {slo.format_duration(window.long_seconds)} "
                    f"(threshold {window.burn_rate:g}x, {window.severity})",
                )
    success = prometheus.scalar(f'max(synthetic_journey_success{{namespace="{ns}"}})')
    last_run = prometheus.scalar(f'max(synthetic_journey_last_run_timestamp_seconds{{namespace="{ns}"}})')
    if success is not None:
        age = time.time() - last_run if last_run is not None else None
        report.synthetic = {"success": bool(success), "last_run_age_seconds": age}
        if not success:
            report.add(UNHEALTHY, "synthetic journey failing (last probe run)")


def _alerts(report: Report, alerts: list[dict[str, Any]], source: str) -> None:
    report.alerts_source = source
    for alert in alerts:
        labels = alert.get("labels", {})
        state = alert.get("state") or alert.get("status", {}).get("state")
        if labels.get("namespace") not in (None, report.namespace) or state not in ("firing", "active"):
            continue
        if labels.get("alertname") == "Watchdog" or labels.get("alertname", "").endswith("Watchdog"):
            continue  # the always-firing dead man's switch
        severity = labels.get("severity", "none")
        report.alerts.append(
            {
                "alertname": labels.get("alertname"),
                "severity": severity,
                "since": alert.get("activeAt") or alert.get("startsAt"),
                "runbook_url": alert.get("annotations", {}).get("runbook_url"),
            }
        )
        report.add(
            UNHEALTHY if severity == "critical" else DEGRADED, f"alert {labels.get('alertname')} firing"
        )


def collect(args: argparse.Namespace) -> Report:
    from kit.k8s_overlays import API_DEPLOYMENT, SERVICE, WORKER_DEPLOYMENT

    target = envs.resolve(args.env, args.namespace)
    cluster = kube.connect(args.context, args.kubeconfig)
    report = Report(environment=target.env, namespace=target.namespace, context=cluster.context)
    now = datetime.now(UTC)
    with output.progress(f"reading {target.namespace} in {cluster.context}", lines=False) as bar:
        cluster.require_namespace(target.namespace)
        for name in (API_DEPLOYMENT, WORKER_DEPLOYMENT):
            bar.update(f"deployment {name}")
            _workload(
                report,
                cluster.call(
                    f"deployment {name}", cluster.apps.read_namespaced_deployment, name, target.namespace
                ),
            )
        bar.update("pods")
        pods = cluster.call(
            "pods",
            cluster.core.list_namespaced_pod,
            target.namespace,
            label_selector=f"app.kubernetes.io/name={SERVICE}",
        )
        workload_pods = [  # not the probe's or the kit's one-off pods
            p
            for p in pods.get("items", [])
            if p["metadata"].get("labels", {}).get("app.kubernetes.io/component") in ("api", "worker")
        ]
        _pods(report, workload_pods, now)
        bar.update("autoscaler")
        try:
            _autoscaler(
                report,
                cluster.call(
                    "HPA",
                    cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler,
                    API_DEPLOYMENT,
                    target.namespace,
                ),
            )
        except KitError as error:
            if error.code != 6:  # no HPA in environments without autoscaling (preview)
                raise
        bar.update("disruption budgets")
        pdbs = cluster.call("PDBs", cluster.policy.list_namespaced_pod_disruption_budget, target.namespace)
        _disruption_budgets(report, pdbs.get("items", []))
        bar.update("readiness")
        _health(report, cluster, args.url, args.timeout)
        prometheus_url = args.prometheus_url or os.environ.get("KIT_PROMETHEUS_URL")
        alertmanager_url = args.alertmanager_url or os.environ.get("KIT_ALERTMANAGER_URL")
        if prometheus_url:
            bar.update("burn rates")
            prometheus = Prometheus(prometheus_url, args.timeout)
            try:
                _prometheus(report, prometheus, target.env)
                if not alertmanager_url:
                    _alerts(report, prometheus.alerts(), "prometheus")
            except KitError as error:
                if error.code != UNREACHABLE:
                    raise
                report.unreachable.append(error.message)
            finally:
                prometheus.close()
        if alertmanager_url:
            bar.update("alerts")
            try:
                _alerts(
                    report,
                    alertmanager_alerts(alertmanager_url, target.namespace, args.timeout),
                    "alertmanager",
                )
            except KitError as error:
                if error.code != UNREACHABLE:
                    raise
                report.unreachable.append(error.message)
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render(report: Report) -> None:
    output.table(
        f"{report.namespace} ({report.environment}, context {report.context})",
        ["deployment", "desired", "ready", "updated", "available", "rollout", "revision", "image"],
        [
            [
                w["name"],
                w["desired"],
                w["ready"],
                w["updated"],
                w["available"],
                w["rollout"],
                w["revision"],
                w["image"],
            ]
            for w in report.workloads
        ],
    )
    output.table(
        "pods",
        ["pod", "component", "phase", "ready", "restarts", "age", "reasons"],
        [
            [
                p["name"],
                p["component"],
                p["phase"],
                "yes" if p["ready"] else "no",
                p["restarts"],
                p["age"],
                "; ".join(p["reasons"]),
            ]
            for p in report.pods
        ],
    )
    if report.autoscaler:
        a = report.autoscaler
        output.line(
            f"HPA {a['name']}: {a['current']} current, {a['desired']} desired "
            f"(min {a['min']}, max {a['max']})"
        )
    for pdb in report.disruption_budgets:
        output.line(
            f"PDB {pdb['name']}: {pdb['allowed']} disruption(s) allowed "
            f"({pdb['healthy']}/{pdb['desired_healthy']} healthy)"
        )
    if report.health:
        h = report.health
        detail = h.get("body") or h.get("error") or ""
        output.line(f"readiness ({h['source']}): {h.get('status') or 'no answer'} {detail}".rstrip())
    if report.burn_rates:
        output.table(
            "SLO burn rates",
            ["slo", "windows", "severity", "long", "short", "threshold", "burning"],
            [
                [
                    b["slo"],
                    b["windows"],
                    b["severity"],
                    _fmt(b["burn_long"]),
                    _fmt(b["burn_short"]),
                    f"{b['threshold']:g}x",
                    "YES" if b["burning"] else "no",
                ]
                for b in report.burn_rates
            ],
        )
    if report.synthetic:
        s = report.synthetic
        age = (
            "unknown"
            if s["last_run_age_seconds"] is None
            else human_duration(s["last_run_age_seconds"]) + " ago"
        )
        output.line(f"synthetic journey: {'passing' if s['success'] else 'FAILING'} (last run {age})")
    if report.alerts_source:
        if report.alerts:
            output.table(
                f"firing alerts ({report.alerts_source})",
                ["alert", "severity", "since", "runbook"],
                [[a["alertname"], a["severity"], a["since"], a["runbook_url"]] for a in report.alerts],
            )
        else:
            output.line(f"firing alerts ({report.alerts_source}): none")
    for finding in report.findings:
        output.line(f"- {finding.level}: {finding.message}")
    output.line(f"verdict: {report.verdict}")


def run(args: argparse.Namespace) -> int:
    report = collect(args)
    if args.json:
        document = asdict(report)
        document["verdict"] = report.verdict
        output.emit_json(document)
    else:
        render(report)
    for message in report.unreachable:
        output.note(f"error: {message}")
    if report.verdict == UNHEALTHY:
        return FAILED
    return UNREACHABLE if report.unreachable else OK

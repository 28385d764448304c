"""Saturation: pods and replicas, CPU against requests and limits, memory, event-loop lag, the
database pool, abuse protection, the outbox worker and certificates."""

from __future__ import annotations

from kit.dashboards.model import RATE, SCOPE, Board, Panel, Row
from kit.slo import SloSpec


def board(spec: SloSpec, environment: str) -> Board:
    del environment  # thresholds here are service-wide
    sel, t = spec.selectors, spec.thresholds
    ksm_scope = f'job="{sel.kube_state_metrics_job}", namespace=~"$namespace"'
    ksm = f'{ksm_scope}, pod=~"{sel.pod_regex}"'
    deployments = f'{ksm_scope}, deployment=~"{sel.deployment_regex}"'
    cadvisor = f'job="{sel.cadvisor_job}", namespace=~"$namespace", pod=~"{sel.pod_regex}", container!=""'
    hpa = f'{ksm_scope}, horizontalpodautoscaler="{sel.hpa_name}"'
    certificates = f'job="{sel.cert_manager_job}", name=~"{sel.certificate_name.format(environment=".+")}"'
    expiry = f"certmanager_certificate_expiration_timestamp_seconds{{{certificates}}}"

    def container(quantity: str, resource: str) -> str:
        return f'max by (container) (kube_pod_container_resource_{quantity}{{{ksm}, resource="{resource}"}})'

    pods = Row(
        1,
        "Pods",
        [
            Panel(
                2,
                "saturation-targets-up",
                "Scrape targets up",
                """Targets Prometheus scrapes successfully, per job. 0 for the API means the SLO alerts
                are blind.""",
                "short",
                [(f"sum by (job) (up{{{SCOPE}}})", "{{job}}")],
                width=8,
            ),
            Panel(
                3,
                "saturation-pods-ready",
                "Ready vs desired replicas",
                """Available (ready) replicas of each Deployment against the replicas it wants
                (kube-state-metrics). Available 0 with desired > 0 is an outage at the edge
                (ApiNoAvailableReplicas); available below desired for long is a stuck rollout or
                pods that cannot get ready.""",
                "short",
                [
                    (
                        f"max by (deployment) (kube_deployment_status_replicas_available{{{deployments}}})",
                        "ready {{deployment}}",
                    ),
                    (
                        f"max by (deployment) (kube_deployment_spec_replicas{{{deployments}}})",
                        "desired {{deployment}}",
                    ),
                ],
                width=8,
            ),
            Panel(
                4,
                "saturation-restarts",
                "Container restarts",
                """Container restarts per pod in each interval: steady restarts are a crash loop (OOM
                kill, failing start-up, failing liveness probe).""",
                "short",
                [
                    (
                        "sum by (pod, container) "
                        f"(increase(kube_pod_container_status_restarts_total{{{ksm}}}[{RATE}]))",
                        "{{pod}}/{{container}}",
                    )
                ],
                width=8,
            ),
            Panel(
                5,
                "saturation-cpu",
                "CPU per pod vs request and limit",
                """CPU cores used by each pod's containers (cAdvisor), with the containers' CPU request
                and limit (kube-state-metrics): the HPA's utilisation is usage / request; at the
                limit the kernel throttles the container.""",
                "short",
                [
                    (
                        f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{cadvisor}}}[{RATE}]))",
                        "used {{pod}}",
                    ),
                    (container("requests", "cpu"), "request {{container}}"),
                    (container("limits", "cpu"), "limit {{container}}"),
                ],
                width=8,
            ),
            Panel(
                19,
                "saturation-cpu-throttling",
                "CPU throttling",
                """Share of CFS periods in which each pod's containers were throttled at their CPU
                limit: above a few percent, latency suffers before CPU usage looks high.""",
                "percentunit",
                [
                    (
                        "sum by (pod) (rate(container_cpu_cfs_throttled_periods_total"
                        f"{{{cadvisor}}}[{RATE}]))\n/\n"
                        f"sum by (pod) (rate(container_cpu_cfs_periods_total{{{cadvisor}}}[{RATE}]))",
                        "{{pod}}",
                    )
                ],
                width=8,
            ),
            Panel(
                6,
                "saturation-memory",
                "Memory per process vs limit",
                """Resident memory of each process, and the containers' memory limit
                (kube-state-metrics): near the limit the kernel OOM-kills the container.""",
                "bytes",
                [
                    (
                        f"sum by (job, instance) (process_resident_memory_bytes{{{SCOPE}}})",
                        "{{job}} {{instance}}",
                    ),
                    (container("limits", "memory"), "limit {{container}}"),
                ],
                width=8,
            ),
            Panel(
                20,
                "saturation-event-loop-lag",
                "Event-loop lag",
                """How late the API's event loop runs a timer (p99 and max over the interval, per
                pod): one process serves every request, so lag is added to every request's latency;
                sustained lag means CPU-bound work or a blocking call on the loop.""",
                "s",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, instance) "
                        f"(rate(event_loop_lag_seconds_bucket{{{SCOPE}}}[{RATE}])))",
                        "p99 {{instance}}",
                    ),
                ],
                width=8,
            ),
            Panel(
                7,
                "saturation-hpa-replicas",
                "Autoscaler replicas",
                """Current, desired and maximum replicas of the API autoscaler: current = max means
                scaling is exhausted.""",
                "short",
                [
                    (f"max(kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}})", "current"),
                    (f"max(kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}})", "desired"),
                    (f"max(kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}})", "max"),
                ],
                width=8,
            ),
        ],
    )
    database = Row(
        8,
        "Database and abuse protection",
        [
            Panel(
                9,
                "saturation-db-pool",
                "DB pool in use",
                """Connections checked out of each API process's pool divided by the pool's maximum;
                the dashed line is the DbPoolSaturated threshold.""",
                "percentunit",
                [
                    (
                        f"max by (instance) (db_pool_connections_in_use{{{SCOPE}}} / "
                        f"db_pool_connections_max{{{SCOPE}}})",
                        "{{instance}}",
                    )
                ],
                width=8,
                thresholds=((None, "green"), (t.db_pool_saturation_ratio, "red")),
            ),
            Panel(
                21,
                "saturation-db-pool-wait",
                "DB pool wait time",
                """How long units of work wait for a pooled database connection (p99 per pod):
                waiting is the first sign of a saturated pool, before DB_POOL_TIMEOUT_SECONDS turns
                it into 500s.""",
                "s",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, instance) "
                        f"(rate(db_pool_checkout_wait_seconds_bucket{{{SCOPE}}}[{RATE}])))",
                        "p99 {{instance}}",
                    )
                ],
                width=8,
            ),
            Panel(
                10,
                "saturation-rate-limited",
                "Rate-limited requests",
                """Requests refused with 429 per route class, and errors of the rate-limit storage
                (Redis) that made the limiter fall back to per-process counting
                (RateLimitStorageFailing).""",
                "reqps",
                [
                    (
                        f"sum by (route_class) (rate(rate_limit_rejections_total{{{SCOPE}}}[{RATE}]))",
                        "rejected {{route_class}}",
                    ),
                    (f"sum(rate(rate_limit_storage_errors_total{{{SCOPE}}}[{RATE}]))", "storage errors"),
                ],
                width=8,
            ),
        ],
    )
    outbox = Row(
        11,
        "Outbox worker",
        [
            Panel(
                12,
                "saturation-outbox-pending",
                "Outbox events pending",
                "Events waiting for delivery (queue depth).",
                "short",
                [(f"max by (job) (outbox_events_pending{{{SCOPE}}})", "{{job}}")],
                width=8,
            ),
            Panel(
                13,
                "saturation-outbox-age",
                "Oldest pending event age",
                """Age of the oldest undelivered outbox event; the dashed line is the
                OutboxBacklogAging threshold. Frozen while polls fail: read it with the poll
                panel.""",
                "s",
                [(f"max by (job) (outbox_oldest_pending_age_seconds{{{SCOPE}}})", "{{job}}")],
                width=8,
                thresholds=((None, "green"), (t.outbox_oldest_pending_age_seconds, "red")),
            ),
            Panel(
                22,
                "saturation-outbox-poll",
                "Time since the last successful poll",
                """Seconds since each worker last polled the outbox successfully (the dashed line is
                the OutboxPollStale threshold), and failed polls per second.""",
                "s",
                [
                    (
                        f"time() - max by (instance) (outbox_last_poll_success_timestamp_seconds{{{SCOPE}}})",
                        "since success {{instance}}",
                    ),
                    (
                        f"sum by (instance) (rate(outbox_poll_failures_total{{{SCOPE}}}[{RATE}]))",
                        "failures/s {{instance}}",
                    ),
                ],
                width=8,
                thresholds=((None, "green"), (t.outbox_poll_stale_seconds, "red")),
            ),
            Panel(
                14,
                "saturation-worker-throughput",
                "Worker deliveries by outcome",
                """Webhook deliveries per second: delivered, retried (will try again) and
                dead_lettered (gave up).""",
                "ops",
                [(f"sum by (outcome) (rate(outbox_deliveries_total{{{SCOPE}}}[{RATE}]))", "{{outcome}}")],
                width=8,
            ),
            Panel(
                15,
                "saturation-outbox-dead-lettered",
                "Dead-lettered events",
                "Events that exhausted their retries and wait for an operator (replay or discard).",
                "short",
                [(f"max by (job) (outbox_events_dead_lettered{{{SCOPE}}})", "{{job}}")],
                width=8,
                thresholds=((None, "green"), (1, "red")),
            ),
            Panel(
                16,
                "saturation-circuit-breaker",
                "Circuit breaker state",
                """State per breaker and worker: closed (calls flow), half-open (probing), open
                (calls refused).""",
                "none",
                [(f"max by (name, instance) (circuit_breaker_state{{{SCOPE}}})", "{{name}} {{instance}}")],
                width=8,
                thresholds=((None, "green"), (1, "orange"), (2, "red")),
                mappings={0: ("closed", "green"), 1: ("half-open", "orange"), 2: ("open", "red")},
            ),
            Panel(
                17,
                "saturation-certificate-expiry",
                "Certificate time to expiry",
                """Time left before each environment's TLS certificate expires (cert-manager; they
                live in the shared Gateway's namespace, one per environment host); the dashed lines
                are the CertificateExpiringSoon warning and critical thresholds.""",
                "s",
                [(f"min by (name) ({expiry}) - time()", "{{name}}")],
                width=8,
                thresholds=(
                    (None, "red"),
                    (t.certificate_expiry_critical_days * 86400, "orange"),
                    (t.certificate_expiry_days * 86400, "green"),
                ),
            ),
            Panel(
                18,
                "saturation-idempotency-sweep",
                "Expired idempotency keys swept",
                """Rows per second the worker's periodic sweep deletes
                (IDEMPOTENCY_SWEEP_INTERVAL_SECONDS); flat at zero while keys keep expiring means no
                replica sweeps.""",
                "ops",
                [(f"sum by (job) (rate(idempotency_keys_swept_total{{{SCOPE}}}[{RATE}]))", "{{job}}")],
                width=8,
            ),
        ],
    )
    return Board(
        f"{spec.service.name}-saturation",
        f"{spec.service.name} / Saturation",
        """Resources and queues: pods, CPU, memory, event loop, database pool, outbox worker,
        certificates.""",
        [pods, database, outbox],
    )

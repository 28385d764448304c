"""`kit dead-letters list|replay|discard`: the outbox's dead-lettered events.

Two ways to reach the database, one result:
- local (`--database-url` or $DATABASE_URL, no --env): straight to the database, through the
  service's own outbox table and queue code (SQLite and PostgreSQL alike).
- in the cluster (`--env`): a one-off Job runs this same command in local mode from the
  worker's image, with the worker's environment (its ConfigMap and Secret references), and the
  result is read back from the Job's log. A Job rather than `kubectl exec` into a worker pod:
  it works while the worker crash-loops or is scaled to 0 (the usual moment to look at dead
  letters), needs `create jobs` instead of the broader `pods/exec` right, leaves an audit trail
  in the API server, and runs the release the worker runs. Its pods carry the label the
  `reference-service-kit-ops` NetworkPolicy (k8s/components/synthetic-probe) admits to the
  database ports, and the worker's restricted security context.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import uuid
from typing import Any

from kit.cli import output
from kit.cli.errors import FAILED, OK, UNREACHABLE, USAGE, KitError

DISCARD_NOTE = "discarded by kit dead-letters: {reason}"
JOB_COMPONENT = "kit-ops"
JOB_NAME_LABEL = "app.kubernetes.io/name"
JOB_NAME_VALUE = "reference-service-kit"


def _event_ids(values: list[str] | None) -> list[uuid.UUID] | None:
    if values is None:
        return None
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            raise KitError(f"not an event id (UUID): {value!r}", USAGE) from None
    return ids


# --- local: the database itself ------------------------------------------------------------


async def _local(action: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select, update

    from app.kernel.clock import utcnow
    from app.outbox.queue import OutboxQueue
    from app.outbox.tables import OutboxStatus
    from app.outbox.tables import outbox_events as t
    from app.persistence.database import create_engine
    from app.settings import Settings

    # The engine only (pool and SQLite settings at their defaults): these commands need none of
    # the secrets a production-like ENVIRONMENT requires, and the worker's pod does not have them all.
    engine = create_engine(Settings.model_construct(database_url=database_url))
    try:
        if action == "list":
            dead = t.c.status == OutboxStatus.DEAD.value
            async with engine.connect() as conn:
                total = (await conn.execute(select(func.count()).where(dead))).scalar_one()
                rows = (
                    await conn.execute(
                        select(t.c.id, t.c.event_type, t.c.attempts, t.c.created_at, t.c.last_error)
                        .where(dead)
                        .order_by(t.c.created_at)
                        .limit(args.limit)
                    )
                ).all()
            events = [
                {
                    "id": str(r.id),
                    "event_type": r.event_type,
                    "attempts": r.attempts,
                    "created_at": r.created_at.isoformat(),
                    "last_error": r.last_error,
                }
                for r in rows
            ]
            return {"total": int(total), "events": events}
        ids = _event_ids(args.event_ids)
        if action == "replay":
            replayed = await OutboxQueue(engine, lease_seconds=60).replay_dead(ids)
            return {"replayed": replayed, "requested": None if ids is None else len(set(ids))}
        assert ids is not None
        discard = (
            update(t)
            .where(t.c.status == OutboxStatus.DEAD.value, t.c.id.in_(ids))
            .values(
                status=OutboxStatus.DELIVERED.value,
                delivered_at=utcnow(),
                last_error=DISCARD_NOTE.format(reason=args.reason),
            )
        )
        async with engine.begin() as conn:
            discarded = (await conn.execute(discard)).rowcount
        return {"discarded": int(discarded), "requested": len(set(ids))}
    finally:
        await engine.dispose()


def run_local(action: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy.exc import SQLAlchemyError

    _event_ids(args.event_ids if action != "list" else None)  # bad ids: usage error before connecting
    try:
        return asyncio.run(_local(action, database_url, args))
    except (SQLAlchemyError, OSError) as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise KitError(
            f"database unreachable or not migrated: {type(error).__name__}: {text}", UNREACHABLE
        ) from None


# --- in the cluster: a Job in the worker's image ----------------------------------------------


def job_manifest(worker: dict[str, Any], name: str, argv: list[str], timeout: float) -> dict[str, Any]:
    """A Job running `kit dead-letters ...` with the worker's image, environment and hardening."""
    pod = worker["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "worker")
    labels = {JOB_NAME_LABEL: JOB_NAME_VALUE, "app.kubernetes.io/component": JOB_COMPONENT}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(timeout),
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": pod.get("serviceAccountName"),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod.get("securityContext", {}),
                    "containers": [
                        {
                            "name": "kit",
                            "image": container["image"],
                            "command": ["kit", *argv],
                            "envFrom": container.get("envFrom", []),
                            "env": container.get("env", []),
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "securityContext": container.get("securityContext", {}),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - a pod spec
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                },
            },
        },
    }


def _job_argv(action: str, args: argparse.Namespace) -> list[str]:
    argv = ["dead-letters", action, "--json"]
    if action == "list":
        argv += ["--limit", str(args.limit)]
    for event_id in getattr(args, "event_ids", None) or []:
        argv += ["--event-id", event_id]
    if getattr(args, "all", False):
        argv.append("--all")
    if action == "discard":
        argv += ["--reason", args.reason, "--yes"]
    return argv


def _result_from_log(log: str) -> dict[str, Any] | None:
    lines = log.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("{"):
            try:
                document, _ = json.JSONDecoder().raw_decode("".join(lines[index:]))
            except ValueError:
                continue
            if isinstance(document, dict):
                return document
    return None


def run_in_cluster(action: str, args: argparse.Namespace) -> dict[str, Any]:
    from kit.cli import envs, kube
    from kit.k8s_overlays import WORKER_DEPLOYMENT

    target = envs.resolve(args.env, args.namespace)
    cluster = kube.connect(args.context, args.kubeconfig)
    cluster.require_namespace(target.namespace)
    worker = cluster.call(
        f"deployment {WORKER_DEPLOYMENT}",
        cluster.apps.read_namespaced_deployment,
        WORKER_DEPLOYMENT,
        target.namespace,
    )
    name = f"kit-dead-letters-{action}-{secrets.token_hex(3)}"
    manifest = job_manifest(worker, name, _job_argv(action, args), args.timeout)
    cluster.call(f"create job {name}", cluster.batch.create_namespaced_job, target.namespace, manifest)
    try:
        job = kube.wait_for(
            f"job {name} in {target.namespace}",
            lambda: cluster.call(f"job {name}", cluster.batch.read_namespaced_job, name, target.namespace),
            done=lambda job: bool(
                job.get("status", {}).get("succeeded") or job.get("status", {}).get("failed")
            ),
            describe=lambda job: f"job {name}: {job.get('status', {}).get('active', 0)} active",
            timeout=args.timeout,
            error=lambda _job: KitError(f"job {name} not finished after {args.timeout:.0f}s", FAILED),
        )
        status = job.get("status", {})
        pods = cluster.call(
            "job pods", cluster.core.list_namespaced_pod, target.namespace, label_selector=f"job-name={name}"
        ).get("items", [])
        if not pods:
            raise KitError(f"job {name} finished but its pod is gone: no result to read", FAILED)
        log = cluster.text(
            "job log", cluster.core.read_namespaced_pod_log, pods[0]["metadata"]["name"], target.namespace
        )
        result = _result_from_log(log)
        if result is None or status.get("failed"):
            tail = " | ".join(log.strip().splitlines()[-3:]) or "no log"
            raise KitError(f"job {name} failed: {tail}", FAILED)
        return result
    finally:
        try:
            cluster.call(
                f"delete job {name}",
                cluster.batch.delete_namespaced_job,
                name,
                target.namespace,
                propagation_policy="Background",
            )
        except KitError as error:
            output.note(f"warning: {error.message} (ttlSecondsAfterFinished removes it in 10 minutes)")


def run(args: argparse.Namespace) -> int:
    action = args.action
    if action == "discard":
        _event_ids(args.event_ids)
        where = f"--env {args.env}" if args.env else "the local database"
        output.confirm(f"discard {len(set(args.event_ids))} event(s) in {where} (never delivered)?", args.yes)
    if args.env:
        if args.database_url:
            raise KitError("give --env (in the cluster) or --database-url (local), not both", USAGE)
        result = run_in_cluster(action, args)
    else:
        database_url = args.database_url or os.environ.get("DATABASE_URL")
        if not database_url:
            raise KitError(
                "which database? --env <env> (in the cluster) or --database-url / $DATABASE_URL", USAGE
            )
        result = run_local(action, database_url, args)
    if args.json:
        output.emit_json(result)
    elif action == "list":
        output.table(
            f"dead-lettered events ({len(result['events'])} of {result['total']})",
            ["id", "event type", "attempts", "created", "last error"],
            [
                [e["id"], e["event_type"], e["attempts"], e["created_at"], (e["last_error"] or "")[:80]]
                for e in result["events"]
            ],
        )
    else:
        done = result.get("replayed", result.get("discarded"))
        verb = (
            "replayed (pending again, fresh attempts)"
            if action == "replay"
            else "discarded (marked delivered)"
        )
        output.line(f"{done} event(s) {verb}")
    requested, done = result.get("requested"), result.get("replayed", result.get("discarded"))
    if action != "list" and requested is not None and done is not None and done < requested:
        output.note(
            f"error: only {done} of {requested} requested events were dead-lettered "
            "(unknown id, or already pending or delivered)"
        )
        return FAILED
    return OK

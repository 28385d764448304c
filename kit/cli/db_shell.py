"""`kit db-shell --env <env>`: psql against the environment's database from inside its namespace.

The recipe (`--print` shows it): a short-lived pod from the official PostgreSQL image that
- passes Pod Security `restricted` (non-root uid 999, the image's postgres user; no privilege
  escalation; every capability dropped; RuntimeDefault seccomp; read-only root, /tmp emptyDir),
- carries the `app.kubernetes.io/component: kit-ops` label that the `reference-service-kit-ops`
  NetworkPolicy lets out to DNS and the database ports (default-deny blocks any other pod),
- reads the app role's DATABASE_URL from the `reference-service-secrets` Secret (DML, no DDL),
- starts psql with `default_transaction_read_only=on` unless --write (a guard against
  accidents, not a permission: `SET` can lift it; use a read-only role where that matters),
- ends itself after an hour (activeDeadlineSeconds) and is deleted when psql exits.
`kubectl exec -it` attaches the terminal (the Python client has no interactive TTY).
"""

from __future__ import annotations

import argparse
import getpass
import re
import secrets
import shutil
import subprocess
from typing import Any

from kit.cli import envs, kube, output
from kit.cli.errors import FAILED, OK, SETUP, KitError

IMAGE = "docker.io/library/postgres:15-bookworm"
POSTGRES_UID = 999  # the postgres user of the Debian-based official image
SECRET, SECRET_KEY = "reference-service-secrets", "DATABASE_URL"
LIFETIME_SECONDS = 3600
# psql wants libpq's URL: drop SQLAlchemy's "+asyncpg" driver suffix.
PSQL = 'exec psql "$(printf %s "$DATABASE_URL" | sed "s/+asyncpg//")"'


def pod_manifest(name: str, *, write: bool) -> dict[str, Any]:
    restricted = {
        "runAsNonRoot": True,
        "runAsUser": POSTGRES_UID,
        "runAsGroup": POSTGRES_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    env = [
        {"name": SECRET_KEY, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": SECRET_KEY}}},
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - paths in a pod spec
        {"name": "PSQL_HISTORY", "value": "/tmp/.psql_history"},  # noqa: S108
        {"name": "PGAPPNAME", "value": "kit-db-shell"},
    ]
    if not write:
        env.append({"name": "PGOPTIONS", "value": "-c default_transaction_read_only=on"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "reference-service-kit",
                "app.kubernetes.io/component": "kit-ops",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": LIFETIME_SECONDS,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {**restricted, "fsGroup": POSTGRES_UID},
            "containers": [
                {
                    "name": "psql",
                    "image": IMAGE,
                    "command": ["sleep", str(LIFETIME_SECONDS)],
                    "env": env,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "securityContext": {
                        **restricted,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        },
    }


def _pod_name() -> str:
    user = re.sub(r"[^a-z0-9-]", "", getpass.getuser().lower())[:20].strip("-") or "user"
    return f"kit-db-shell-{user}-{secrets.token_hex(3)}"


def _kubectl(args: argparse.Namespace, cluster_context: str | None) -> list[str]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KitError("kubectl is not installed: it attaches the terminal to psql", SETUP)
    argv = [kubectl]
    if args.kubeconfig:
        argv += ["--kubeconfig", args.kubeconfig]
    if cluster_context:
        argv += ["--context", cluster_context]
    return argv


def run(args: argparse.Namespace) -> int:
    target = envs.resolve(args.env, args.namespace)
    name = _pod_name()
    manifest = pod_manifest(name, write=args.write)
    manifest["metadata"]["namespace"] = target.namespace
    if args.print_only:
        if args.json:
            output.emit_json(manifest)
        else:
            import yaml

            ctx = f" --context {args.context}" if args.context else ""
            output.line(yaml.safe_dump(manifest, sort_keys=False).rstrip())
            output.line("---")
            output.line(f"# kubectl{ctx} apply -f <this file>")
            output.line(f"# kubectl{ctx} -n {target.namespace} wait --for=condition=Ready pod/{name}")
            output.line(f"# kubectl{ctx} -n {target.namespace} exec -it {name} -- sh -c '{PSQL}'")
            output.line(f"# kubectl{ctx} -n {target.namespace} delete pod {name}")
        return OK
    if args.write:
        output.confirm(f"open a WRITABLE psql session on {target.namespace}?", args.yes)
    kubectl = _kubectl(args, args.context)
    cluster = kube.connect(args.context, args.kubeconfig)
    cluster.require_namespace(target.namespace)
    cluster.call(f"create pod {name}", cluster.core.create_namespaced_pod, target.namespace, manifest)
    try:

        def phase(pod: dict[str, Any]) -> Any:
            return pod.get("status", {}).get("phase")

        def waiting(pod: dict[str, Any]) -> list[Any]:
            return [
                c.get("state", {}).get("waiting", {}).get("reason")
                for c in pod.get("status", {}).get("containerStatuses", [])
            ]

        kube.wait_for(
            f"starting {name}",
            lambda: cluster.call(f"pod {name}", cluster.core.read_namespaced_pod, name, target.namespace),
            done=lambda pod: phase(pod) == "Running",
            describe=lambda pod: f"{name}: {phase(pod)} {' '.join(w for w in waiting(pod) if w)}".rstrip(),
            timeout=args.timeout,
            error=lambda pod: KitError(
                f"debug pod {name} did not start: {phase(pod)} {waiting(pod)}", FAILED
            ),
            stuck=lambda pod: phase(pod) in ("Failed", "Succeeded"),
        )
        session = subprocess.run(  # noqa: S603 - kubectl with our own arguments
            [*kubectl, "-n", target.namespace, "exec", "-it", name, "--", "sh", "-c", PSQL], check=False
        )
        return session.returncode
    finally:
        try:
            cluster.call(
                f"delete pod {name}",
                cluster.core.delete_namespaced_pod,
                name,
                target.namespace,
                grace_period_seconds=0,
            )
        except KitError as error:
            output.note(f"warning: {error.message}; it ends itself within the hour (activeDeadlineSeconds)")
        if args.json:
            output.emit_json({"pod": name, "namespace": target.namespace, "deleted": True})

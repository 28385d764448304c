"""The local stack ``make loadtest ENV=ci`` runs against: all on loopback, all stopped afterwards.

PostgreSQL and Redis come from the test harness (``testsupport.servers``); the API runs as in
production (``python -m app.main``: uvicorn, uvloop, httptools, one worker, JSON logs at WARNING)
next to the outbox worker, which delivers to a tiny local webhook receiver.

Rate limiting is off (``RATE_LIMIT_ENABLED=false``): every virtual user comes from 127.0.0.1, so
the per-client limits would measure the limiter, not the service. The benchmark keeps the
limiter on with limits no client reaches, to cost what it costs in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kit.paths import ROOT
from loadtests.seed import SeedSize, seed
from testsupport.processes import MIGRATE_TIMEOUT_SECONDS
from testsupport.servers import (
    free_port,
    port_open,
    postgres_server,
    redis_server,
    stop_process,
    untraced_environ,
)

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A part of the local stack did not start."""


@dataclass(frozen=True)
class Backing:
    """The data services one or more API processes share."""

    database_url: str
    redis_url: str
    webhook_url: str


def pinning(cpu: int | None) -> list[str]:
    """``taskset -c CPU`` when there is such a core and taskset exists; else no pinning."""
    if cpu is None or shutil.which("taskset") is None or cpu >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(cpu)]


def service_env(backing: Backing, port: int | None = None, **overrides: str) -> dict[str, str]:
    env = {
        # Measured servers never run under coverage's tracer, even when pytest starts them.
        **untraced_environ(),
        "ENVIRONMENT": "ci",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": backing.database_url,
        "REDIS_URL": backing.redis_url,
        "WEBHOOK_URL": backing.webhook_url,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "RATE_LIMIT_ENABLED": "false",
        "COOKIE_SECURE": "false",
        "HOST": LOOPBACK,
        "PORT": str(port or 8000),
        "WORKER_METRICS_PORT": str(free_port()),
    }
    env.update(overrides)
    return env


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def webhook_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/hooks/projects"
    finally:
        server.shutdown()
        server.server_close()


def migrate(python: Path, backing: Backing, cwd: Path = ROOT) -> None:
    out = subprocess.run(  # noqa: S603 - fixed argv
        [str(python), "-m", "app.migrate"],
        cwd=cwd,
        env=service_env(backing),
        capture_output=True,
        text=True,
        check=False,
        timeout=MIGRATE_TIMEOUT_SECONDS,
    )
    if out.returncode != 0:
        raise StackError(f"migrations failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")


@contextlib.contextmanager
def backing_services(size: SeedSize, python: Path = VENV_PYTHON) -> Iterator[Backing]:
    """PostgreSQL (migrated and seeded), Redis and the webhook receiver."""
    with postgres_server() as pg, redis_server() as redis, webhook_receiver() as hook:
        pg.psql("CREATE DATABASE loadtest")
        backing = Backing(pg.url("loadtest"), redis.url, hook)
        migrate(python, backing)
        seconds = asyncio.run(seed(backing.database_url, size))
        print(f"seeded {size.projects} projects / {size.owners} owners in {seconds:.1f}s", file=sys.stderr)
        yield backing


def port_is_open(port: int) -> bool:
    return port_open(port)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback http only
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as log_file:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            yield process
        finally:
            stop_process(process, grace=30)


@dataclass(frozen=True)
class Service:
    base_url: str
    api: subprocess.Popen[bytes]
    ready_seconds: float  # from the API's spawn to its first 200 on /health/ready


def _log_tail(log: Path, lines: int = 5) -> str:
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:]) if log.exists() else ""


@contextlib.contextmanager
def service(
    backing: Backing,
    log_dir: Path,
    *,
    python: Path = VENV_PYTHON,
    tree: Path = ROOT,
    cpu: int | None = 0,
    with_worker: bool = True,
    overrides: dict[str, str] | None = None,
) -> Iterator[Service]:
    """The API (pinned to ``cpu``) and the outbox worker of the source tree ``tree``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = service_env(backing, port, **(overrides or {}))
    api_log, worker_log = log_dir / "api.log", log_dir / "worker.log"
    with contextlib.ExitStack() as stack:
        spawned = time.monotonic()
        api = stack.enter_context(
            _process([*pinning(cpu), str(python), "-m", "app.main"], env, api_log, tree)
        )
        if with_worker and _has_worker(tree):
            stack.enter_context(_process([str(python), "-m", "app.worker"], env, worker_log, tree))
        base_url = f"http://{LOOPBACK}:{port}"

        deadline = time.monotonic() + 60
        while not _ready(f"{base_url}/health/ready"):
            if api.poll() is not None:
                raise StackError(f"the API exited with {api.returncode}: {_log_tail(api_log)}")
            if time.monotonic() > deadline:
                raise StackError(f"the API was not ready within 60s: {_log_tail(api_log)}")
            time.sleep(0.02)  # fine enough for the benchmark's start-up figure
        yield Service(base_url, api, time.monotonic() - spawned)


def _has_worker(tree: Path) -> bool:
    app = tree / "service" / "src" / "app"
    return (app / "worker.py").exists() or (app / "worker" / "__init__.py").exists()

"""The service as production runs it: `python -m app.main` in its own process, on a free port.

Shared by the system tests and the restore drill (kit.restore_drill), which smoke-tests a
restored database with the real app.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from testsupport.servers import free_port, stop_process

# Settings a child process must not inherit from the developer's shell.
_ISOLATED = ("REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "WEBHOOK_URL", "LOG_LEVEL", "DB_ECHO")


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed: a line that is not one JSON object fails the test."""
        lines = self.log_path.read_text().splitlines()
        parsed = []
        for line in lines:
            entry = json.loads(line)
            assert isinstance(entry, dict), line
            parsed.append(entry)
        return parsed

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def service_process(
    database_url: str, log_dir: Path, *, jwt_secret: str, startup_timeout: float = 60, **env: str
) -> Iterator[ServiceProcess]:
    """Start the API on DATABASE_URL and wait until /health/live answers; SIGTERM on exit."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in _ISOLATED}
    environment.update(
        {
            "DATABASE_URL": database_url,
            "PORT": str(port),
            "ENVIRONMENT": "test",
            "JWT_SECRET": jwt_secret,
            "COOKIE_SECURE": "false",
            "RATE_LIMIT_ENABLED": "false",
            "SHUTDOWN_DELAY_SECONDS": "0",
            **env,
        }
    )
    log_path = log_dir / f"service-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.main"], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    server = ServiceProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"service exited with {process.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.base_url}/health/live", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"service not live after {startup_timeout:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield server
    finally:
        stop_process(process, grace=30)


@dataclass(frozen=True)
class SmokeResult:
    ready: int
    login: int
    projects_listed: int


def smoke(base_url: str, email: str, password: str, timeout: float = 10) -> SmokeResult:
    """The user journey an operator checks first: ready, log in, list projects. Raises on failure."""
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        ready = client.get("/health/ready")
        if ready.status_code != 200:
            raise AssertionError(f"/health/ready answered {ready.status_code}: {ready.text[:200]}")
        login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        if login.status_code != 200:
            raise AssertionError(f"login answered {login.status_code}: {login.text[:200]}")
        token = login.json()["accessToken"]
        listed = client.get("/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
        if listed.status_code != 200:
            raise AssertionError(f"project list answered {listed.status_code}: {listed.text[:200]}")
        return SmokeResult(ready.status_code, login.status_code, len(listed.json()["data"]))

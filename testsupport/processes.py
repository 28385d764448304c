"""The service's own processes (API and outbox worker) as real children, for system and chaos tests.

Each one runs as production runs it (`python -m app.main` / `python -m app.worker`, JSON logs to a
file) on free loopback ports, can be signalled (SIGTERM, SIGKILL) and started again with the same
settings, and is always stopped when its block ends. Children run without coverage's tracer:
chaos scenarios measure latency, and traced servers are several times slower.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from testsupport.servers import free_port, stop_process, untraced_environ

ROOT = Path(__file__).resolve().parents[1]
MIGRATE_TIMEOUT_SECONDS = 120  # `python -m app.migrate` (a lock it waits for must not stall the run)
# Settings a child must not inherit from the developer's shell.
_ISOLATED = (
    "DATABASE_URL",
    "REDIS_URL",
    "WEBHOOK_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "LOG_LEVEL",
    "DB_ECHO",
    "PORT",
    "WORKER_METRICS_PORT",
)
TEST_JWT_SECRET = "chaos-secret-" + "x" * 40


def service_environment(**settings: str) -> dict[str, str]:
    """A child's environment: this one without service settings, plus test defaults and `settings`."""
    env = {k: v for k, v in untraced_environ().items() if k not in _ISOLATED}
    env.update(
        {
            "PYTHONPATH": str(ROOT / "service" / "src"),
            "ENVIRONMENT": "test",
            "JWT_SECRET": TEST_JWT_SECRET,
            "COOKIE_SECURE": "false",
            "LOG_JSON": "true",
            "HOST": "127.0.0.1",
            **settings,
        }
    )
    return env


@dataclass
class ManagedProcess:
    """One child process; `start_again` runs the same command with the same environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if it does not exit within 30 s (see stop_process)."""
        if self.process is not None:
            stop_process(self.process, grace=30)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (over every start), parsed; other lines are skipped."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    records.append(entry)
        return records

    def wait_until_serving(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise RuntimeError(f"{self.name} exited with {self._returncode()}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not serving {url} after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()


@dataclass
class ApiProcess(ManagedProcess):
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def serving_url(self) -> str:
        return f"{self.base_url}/health/live"

    def start_again(self) -> None:
        self.start()
        self.wait_until_serving(self.serving_url)

    def metrics(self) -> str:
        return _get_text(f"{self.base_url}/metrics")


@dataclass
class WorkerProcess(ManagedProcess):
    metrics_port: int = 0

    @property
    def serving_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start_again(self) -> None:
        self.start()
        self.wait_until_serving(self.serving_url)

    def metrics(self) -> str:
        return _get_text(self.serving_url)


def _get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        return str(response.read().decode())


def read_lines_until(stream: IO[str], done: Callable[[str], bool], timeout: float) -> list[str]:
    """A child's text output, line by line, until a line for which `done` is true, the end of the
    stream or `timeout` seconds, whichever comes first; the lines read.

    A bare ``stream.readline()`` blocks for good on a child that stays up and prints nothing, and
    a deadline checked between lines never comes. A daemon thread reads instead, and keeps
    draining the pipe afterwards so that the child never blocks on a full one.
    """
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    read: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        read.append(line)
        if done(line):
            break
    return read


def metric_value(exposition: str, sample: str) -> float | None:
    """The value of one sample line, e.g. `circuit_breaker_state{name="webhook"}`, or None if absent."""
    for line in exposition.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return None


def new_api(log_dir: Path, **settings: str) -> ApiProcess:
    """The API (`python -m app.main`) on a free port, not started yet (see `running`)."""
    port = free_port()
    env = service_environment(PORT=str(port), **settings)
    return ApiProcess("api", [sys.executable, "-m", "app.main"], env, log_dir / f"api-{port}.log", port=port)


def new_worker(log_dir: Path, **settings: str) -> WorkerProcess:
    """The outbox worker (`python -m app.worker`), its /metrics on a free port, not started yet."""
    metrics_port = free_port()
    env = service_environment(WORKER_METRICS_PORT=str(metrics_port), **settings)
    return WorkerProcess(
        "worker",
        [sys.executable, "-m", "app.worker"],
        env,
        log_dir / f"worker-{metrics_port}.log",
        metrics_port=metrics_port,
    )


@contextlib.contextmanager
def running(*processes: ApiProcess | WorkerProcess) -> Iterator[None]:
    """Start every process at once (their imports overlap), wait until each serves, stop all after."""
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_until_serving(process.serving_url)
        yield
    finally:
        for process in processes:
            process.signal(signal.SIGTERM)
        for process in processes:
            process.stop()


@contextlib.contextmanager
def api_process(log_dir: Path, **settings: str) -> Iterator[ApiProcess]:
    """The API, live before the block starts, stopped after it."""
    api = new_api(log_dir, **settings)
    with running(api):
        yield api


@contextlib.contextmanager
def worker_process(log_dir: Path, **settings: str) -> Iterator[WorkerProcess]:
    """The outbox worker, serving its /metrics before the block starts, stopped after it."""
    worker = new_worker(log_dir, **settings)
    with running(worker):
        yield worker


def migrate(log_dir: Path, database_url: str) -> None:
    """`python -m app.migrate` against `database_url`, as the release step runs it."""
    out = subprocess.run(
        [sys.executable, "-m", "app.migrate"],
        env=service_environment(DATABASE_URL=database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=MIGRATE_TIMEOUT_SECONDS,
    )
    (log_dir / "migrate.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"migrations failed:\n{out.stderr[-2000:]}")

"""Start real PostgreSQL, Redis and Prometheus servers on free loopback ports.

The tests never talk to a fake where a real server fits; these context managers
give each test session throwaway servers and always tear them down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")
# Every wait on a child is bounded: a psql call (psql has no connect timeout of its own: against
# a server that accepted the connection and never answers it waits for good), initdb, and the
# reaping of a SIGKILLed process. A child past its bound fails the test instead of stalling the run.
PSQL_CONNECT_TIMEOUT_SECONDS = 10
PSQL_TIMEOUT_SECONDS = 600  # the restore drill's large variant counts and inserts millions of rows
INITDB_TIMEOUT_SECONDS = 120
KILL_WAIT_SECONDS = 10


# Set by coverage's subprocess patch (pyproject: [tool.coverage.run] patch): a child started
# with them traces every line, several times slower.
COVERAGE_ENV_VARS = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def untraced_environ() -> dict[str, str]:
    """os.environ for children whose speed is measured (load tests): no coverage tracing."""
    return {k: v for k, v in os.environ.items() if k not in COVERAGE_ENV_VARS}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pg_tool(name: str) -> str:
    for directory in PG_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"PostgreSQL tool {name} not found in {PG_BIN_DIRS}")


def _as_postgres_user() -> tuple[int | None, int | None]:
    """(uid, gid) to run PostgreSQL as: initdb refuses root, so drop to 'postgres' or 'nobody'."""
    if os.geteuid() != 0:
        return None, None
    import pwd

    for account in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(account)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and no unprivileged account to run PostgreSQL")


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    durable_commits: bool = False  # synchronous_commit=on: an acknowledged commit survives a SIGKILL

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def psql_argv(self, database: str = "postgres", user: str | None = None) -> list[str]:
        """psql connected to ``database`` on this server as ``user`` (default: the superuser);
        the caller adds the options and what to run."""
        return [
            pg_tool("psql"),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            user or self.user,
            "-d",
            database,
        ]

    def psql(self, sql: str, database: str = "postgres", timeout: float = PSQL_TIMEOUT_SECONDS) -> str:
        out = subprocess.run(
            [*self.psql_argv(database), "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PGCONNECT_TIMEOUT": str(PSQL_CONNECT_TIMEOUT_SECONDS)},
            timeout=timeout,
        )
        return out.stdout

    def stop(self) -> None:
        # SIGTERM = smart shutdown, fast enough with no clients; one left connected would hold it
        # up for good, so after 10 s the postmaster and every backend get SIGKILL.
        stop_process(self.process, grace=10, whole_group=True)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as a crashed or evicted server dies."""
        kill_tree(self.process)

    def start_again(self) -> None:
        """Restart on the same port and data (after stop or kill: crash recovery replays the WAL)."""
        self.process = _spawn_postgres(self.data_dir, self.port, durable_commits=self.durable_commits)
        wait_until(lambda: self.psql("select 1", timeout=10).strip() == "1", 60, "PostgreSQL")


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server and every process it forked (no chance to clean up), then reap it.

    The servers run in their own session (start_new_session), so their process group is theirs alone.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=KILL_WAIT_SECONDS)


def stop_process(
    process: subprocess.Popen[Any],
    *,
    grace: float = 10,
    signum: int = signal.SIGTERM,
    whole_group: bool = False,
) -> int:
    """Stop a child and reap it, every wait bounded: `signum` (SIGTERM), up to `grace` s for it to
    exit, then SIGKILL (to its whole process group with `whole_group`, for a child started in a
    session of its own) and up to KILL_WAIT_SECONDS more. Its exit status (negative: the signal);
    a child that outlives even SIGKILL raises subprocess.TimeoutExpired.

    Every teardown of a child in the tests goes through here (or kill_tree): a child that ignores
    or is slow to honour SIGTERM must not hold the run up.
    """
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
    with contextlib.suppress(subprocess.TimeoutExpired):
        return process.wait(timeout=grace)
    if whole_group:
        kill_tree(process)
    else:
        process.kill()
        process.wait(timeout=KILL_WAIT_SECONDS)
    return process.returncode


def _spawn_postgres(data_dir: Path, port: int, *, durable_commits: bool = False) -> subprocess.Popen[bytes]:
    uid, gid = _as_postgres_user()
    # Tests trade durability for speed; a crash test needs a commit to mean "in the WAL" (the
    # OS stays up, so fsync=off still keeps what was written before a SIGKILL).
    commit_mode = "on" if durable_commits else "off"
    return subprocess.Popen(
        [
            pg_tool("postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(data_dir),
            "-c",
            "fsync=off",
            "-c",
            f"synchronous_commit={commit_mode}",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=uid,
        group=gid,
        start_new_session=True,  # its own process group: kill_tree reaches every backend
    )


@contextlib.contextmanager
def postgres_server(
    *, durable_commits: bool = False, keep_in: Path | None = None
) -> Iterator[PostgresServer]:
    """A throwaway cluster, or with ``keep_in`` one kept there between runs (created on first use)."""
    base = keep_in or Path(tempfile.mkdtemp(prefix="pgtest-"))
    data_dir = base / "data"
    uid, gid = _as_postgres_user()
    if not (data_dir / "PG_VERSION").exists():
        base.mkdir(parents=True, exist_ok=True)
        if uid is not None and gid is not None:
            os.chown(base, uid, gid)
        subprocess.run(
            [
                pg_tool("initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=uid,
            group=gid,
            timeout=INITDB_TIMEOUT_SECONDS,
        )
    port = free_port()
    server = PostgresServer(
        "127.0.0.1",
        port,
        "postgres",
        data_dir,
        _spawn_postgres(data_dir, port, durable_commits=durable_commits),
        durable_commits,
    )
    try:
        wait_until(lambda: server.psql("select 1", timeout=10).strip() == "1", 30, "PostgreSQL")
        yield server
    finally:
        server.stop()
        if keep_in is None:
            shutil.rmtree(base, ignore_errors=True)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop_process(self.process, grace=10, whole_group=True)

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, connections reset."""
        kill_tree(self.process)

    def start_again(self) -> None:
        self.process = _spawn_redis(self.port)
        wait_until(lambda: port_open(self.port), 10, "Redis")


def _spawn_redis(port: int) -> subprocess.Popen[bytes]:
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    return subprocess.Popen(
        [
            redis,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    port = free_port()
    server = RedisServer(port, _spawn_redis(port))
    try:
        wait_until(lambda: port_open(port), 10, "Redis")
        yield server
    finally:
        server.stop()


@dataclass
class PrometheusServer:
    port: int
    config_file: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def prometheus_server(
    config_yaml: str, extra_files: dict[str, str] | None = None
) -> Iterator[PrometheusServer]:
    """Run Debian's prometheus with the given config (rule files can be passed in extra_files)."""
    workdir = Path(tempfile.mkdtemp(prefix="promtest-"))
    for name, content in (extra_files or {}).items():
        (workdir / name).write_text(content)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(config_yaml)
    port = free_port()
    with (workdir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                shutil.which("prometheus") or "/usr/bin/prometheus",
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    server = PrometheusServer(port, config_file, process)
    try:
        wait_until(
            lambda: urllib.request.urlopen(f"{server.url}/-/ready", timeout=1).status == 200,
            30,
            "Prometheus",
        )
        yield server
    finally:
        stop_process(process, grace=15)
        shutil.rmtree(workdir, ignore_errors=True)

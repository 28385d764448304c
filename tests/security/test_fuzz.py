"""Fuzz the running service with schemathesis as each role, on SQLite and PostgreSQL.

Zero server errors, zero responses outside the declared schema (status codes, bodies, headers,
content types), auth never ignored, deleted resources gone, created ones reachable, and no
refused request that changed the database. FUZZ_PROFILE=short (make test) or long
(make security); see tests/security/fuzz.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.migrate import upgrade
from service.tests.builders import make_settings
from service.tests.system.service_process import ServiceProcess, service_process
from tests.security.fuzz import current_profile, run_schemathesis, tokens_by_role
from testsupport.servers import PostgresServer

PROFILE = current_profile()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], tuple[ServiceProcess, str]]]:
    """The service on a backend, started on first use and kept for the module's other runs."""
    with contextlib.ExitStack() as stack:
        started: dict[str, tuple[ServiceProcess, str]] = {}

        def serve(backend: str) -> tuple[ServiceProcess, str]:
            if backend not in started:
                workdir = tmp_path_factory.mktemp(f"fuzz-{backend}")
                if backend == "sqlite":
                    database_url = f"sqlite+aiosqlite:///{workdir / 'fuzz.db'}"
                else:
                    postgres: PostgresServer = request.getfixturevalue("postgres")
                    name = f"fuzz_{uuid.uuid4().hex[:8]}"
                    postgres.psql(f'CREATE DATABASE "{name}"')
                    stack.callback(postgres.psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    database_url = postgres.url(name)
                upgrade(make_settings(database_url))
                # Rate limits off: the fuzzer is one client sending thousands of requests (limits
                # have their own tests); the Host check and everything else as deployed.
                server = stack.enter_context(
                    service_process(database_url, workdir, TRUSTED_HOSTS="127.0.0.1")
                )
                started[backend] = (server, database_url)
            return started[backend]

        yield serve


@pytest.mark.parametrize(("backend", "role"), PROFILE.runs, ids=[f"{b}-{r}" for b, r in PROFILE.runs])
def test_fuzzing_finds_no_failure(
    servers: Callable[[str], tuple[ServiceProcess, str]],
    backend: str,
    role: str,
    record_property: Callable[[str, object], None],
    tmp_path: Path,
) -> None:
    server, database_url = servers(backend)
    token = tokens_by_role(server.base_url, database_url)[role]
    result = run_schemathesis(
        base_url=server.base_url,
        database_url=database_url,
        backend=backend,
        role=role,
        token=token,
        profile=PROFILE,
        report_dir=tmp_path,
    )
    record_property("fuzz", result.line())  # the figures, in the JUnit report
    assert result.cases > 0, result.line()
    assert not result.failures and not result.errors, f"{result.line()}\n{result.output}"
    server_errors = [line for line in server.log_lines() if line.get("status", 0) >= 500]
    assert not server_errors, f"{result.line()}: {server_errors[:3]}"

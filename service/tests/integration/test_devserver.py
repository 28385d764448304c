"""`make run`'s entry point: migrate, create the first admin once, print how to log in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.devserver import ensure_admin
from service.tests.builders import make_settings
from testsupport.processes import read_lines_until
from testsupport.servers import free_port, stop_process, wait_until


async def test_first_admin_gets_a_generated_password_once(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    created = await ensure_admin(settings)
    assert created is not None
    email, password = created
    assert email == "admin@example.com"
    assert len(password) >= 20
    assert await ensure_admin(settings) is None
    again = await ensure_admin(make_settings(sqlite_url))
    assert again is None


async def test_bootstrap_admin_from_environment(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url, bootstrap_admin_email="ops@example.com", bootstrap_admin_password="a long chosen password"
    )
    assert await ensure_admin(settings) == ("ops@example.com", "a long chosen password")


def test_make_run_serves_and_prints_a_working_login(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}",
        "PORT": str(port),
        "ENVIRONMENT": "local",
    }
    env.pop("JWT_SECRET", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.devserver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        output = "".join(read_lines_until(process.stdout, lambda line: "Log in:" in line, 60))
        match = re.search(r"Admin:\s+(\S+) / (\S+)", output)
        assert match, output
        assert f"http://127.0.0.1:{port}/docs" in output
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/health/ready").status_code == 200, 30, "devserver")
        login = httpx.post(f"{base}/api/v1/auth/login", json={"email": match[1], "password": match[2]})
        assert login.status_code == 200
        me = httpx.get(
            f"{base}/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"}
        )
        assert me.json()["role"] == "admin"
        assert "Secure" not in login.headers["set-cookie"]  # local http: the cookie must still be sent
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        stop_process(process, grace=30)
    # A completed drain is a clean exit (DrainingServer does not re-raise the SIGTERM).
    assert process.returncode == 0


@pytest.mark.parametrize("bad_url", ["postgresql+asyncpg://nobody@127.0.0.1:1/none"])
def test_migrate_cli_fails_with_one_line(bad_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.migrate"],
        env={**os.environ, "DATABASE_URL": bad_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("migration failed:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr

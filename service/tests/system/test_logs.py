"""Logs of a real server process: JSON from every logger, request ids on every line, no secrets."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.tests.builders import unique_email
from service.tests.system.service_process import service_process

# Loggers that speak for the process, not for a request (startup, drain, shutdown).
LIFECYCLE_LOGGERS = {"uvicorn.error", "app"}


def test_every_line_is_json_with_its_request_id_and_no_secret(postgres_url: str, tmp_path: Path) -> None:
    password = "Correct-Horse-Battery-9137"
    forged_token = "forged.bearer-token.value-5521"
    # Every SQL statement is logged too (DB_ECHO), to prove bound values stay out.
    with service_process(postgres_url, tmp_path, DB_ECHO="true", LOG_LEVEL="DEBUG") as server:
        with httpx.Client(base_url=server.base_url) as http:
            email = unique_email("logs")
            registered = http.post(
                "/api/v1/auth/register",
                json={"email": email, "password": password, "name": "Log Safety"},
                headers={"X-Request-ID": "req-register"},
            )
            assert registered.status_code == 201
            login = http.post(
                "/api/v1/auth/login",
                json={"email": email, "password": password},
                headers={"X-Request-ID": "req-login"},
            )
            assert login.status_code == 200
            token = login.json()["accessToken"]
            cookie = login.cookies["access_token"]
            by_cookie = http.get("/api/v1/users/me", headers={"X-Request-ID": "req-cookie"})
            assert by_cookie.status_code == 200
            http.cookies.clear()
            by_bearer = http.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-me"}
            )
            assert by_bearer.status_code == 200
            wrong = http.post("/api/v1/auth/login", json={"email": email, "password": password + "x"})
            assert wrong.status_code == 401
            forged = http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged_token}"})
            assert forged.status_code == 401
            short = http.post("/api/v1/auth/register", json={"email": email, "password": "short"})
            assert short.status_code == 422
        assert server.terminate() == 0
        raw = server.log_path.read_text()
        lines = server.log_lines()

    for secret in (password, token, cookie, forged_token, "$argon2", "Bearer "):
        assert secret not in raw, f"a log line carries {secret[:12]}..."
    assert {"uvicorn.error", "app.access", "sqlalchemy.engine.Engine"} <= {line["logger"] for line in lines}

    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line)
        if line["logger"] not in LIFECYCLE_LOGGERS:
            assert "request_id" in line, line

    access = [line for line in lines if line["logger"] == "app.access"]
    assert len(access) == 7  # one line per request (probes stay quiet)
    for line in access:
        assert {"method", "route", "status", "duration_ms", "request_id"} <= set(line)
        assert line["level"] == "info"  # 2xx and 4xx; 5xx lines are errors (tests/api/test_edge.py)
    me = next(line for line in access if line["request_id"] == "req-me")
    assert (me["method"], me["route"], me["status"]) == ("GET", "/api/v1/users/me", 200)
    assert me["user_id"] == registered.json()["id"]
    # A request's own lines (its SQL here) carry its id, and only its id.
    login_sql = [
        line
        for line in lines
        if line["logger"].startswith("sqlalchemy") and line["request_id"] == "req-login"
    ]
    assert any("FROM users" in line["message"] for line in login_sql)

"""One line and a documented exit code for each way a command can fail; never a traceback.

A few run the installed console script (`.venv/bin/kit`, what `make venv` puts on PATH); the
rest call its entry point in this process (importing the kubernetes client costs seconds).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kit.cli import errors
from kit.paths import ROOT
from tests.cli import kube_standin
from tests.cli.conftest import Result, StandIn
from testsupport.servers import free_port, untraced_environ

KIT = ROOT / ".venv" / "bin" / "kit"


def run_kit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KIT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**untraced_environ(), **(env or {})},  # the CLI's speed is not what is measured
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str] | Result, code: int, *fragments: str) -> None:
    returncode, stderr = (
        (result.returncode, result.stderr)
        if isinstance(result, subprocess.CompletedProcess)
        else (result.code, result.err)
    )
    assert returncode == code, (returncode, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_console_script_is_installed_by_make_venv() -> None:
    result = run_kit("--help")
    assert result.returncode == 0
    for command in ("status", "smoke", "rollback", "dead-letters", "preview", "db-shell"):
        assert command in result.stdout


def test_no_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run_kit("status", "--env", "prod", env={"KUBECONFIG": str(missing)})
    assert_one_line(result, errors.SETUP, f"no kubeconfig at {missing}")


def test_unknown_context(standin: Callable[..., StandIn], kit: Callable[..., Result]) -> None:
    api = standin("prod", "healthy")
    result = kit("status", "--env", "prod", "--context", "prod-eu", *api.args())
    assert_one_line(result, errors.SETUP, "context 'prod-eu' is not in", "(contexts: standin)")


def test_wrong_context_shows_as_a_missing_namespace(
    standin: Callable[..., StandIn], kit: Callable[..., Result]
) -> None:
    api = standin("staging", "healthy")  # a staging cluster, asked for prod
    result = kit("rollback", "--env", "prod", "--yes", *api.args())
    assert_one_line(
        result,
        errors.NOT_FOUND,
        "namespace reference-service-prod does not exist in context 'standin'",
        "wrong --context?",
    )


def test_api_server_unreachable(tmp_path: Path) -> None:
    config = kube_standin.kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    result = run_kit("status", "--env", "prod", "--kubeconfig", str(config))
    assert_one_line(result, errors.UNREACHABLE, "Kubernetes API server http://127.0.0.1:", "unreachable")


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--env", "prod"],
        ["rollback", "--env", "prod", "--yes"],
        ["dead-letters", "list", "--env", "prod"],
    ],
    ids=["status", "rollback", "dead-letters"],
)
def test_rbac_denied(standin: Callable[..., StandIn], kit: Callable[..., Result], args: list[str]) -> None:
    api = standin("prod", "rbac_denied")
    result = kit(*args, *api.args())
    assert_one_line(result, errors.DENIED, "RBAC denied (context 'standin')", 'User "kit-test" cannot get')


def test_prometheus_unreachable_keeps_the_rest(
    standin: Callable[..., StandIn], kit: Callable[..., Result]
) -> None:
    api = standin("prod", "healthy")
    url = f"http://127.0.0.1:{free_port()}"
    result = kit("status", "--env", "prod", "--json", "--prometheus-url", url, *api.args())
    assert '"workloads"' in result.out  # the cluster part is still reported
    assert_one_line(result, errors.UNREACHABLE, f"Prometheus unreachable at {url}")


def test_unknown_environment(kit: Callable[..., Result]) -> None:
    result = kit("status", "--env", "qa")
    assert_one_line(result, errors.USAGE, "unknown environment 'qa'")


def test_usage_error_is_one_line() -> None:
    result = run_kit("preview", "up", "--pr", "abc")
    assert_one_line(result, errors.USAGE, "pull request number must be a positive integer")

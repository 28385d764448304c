"""Fixtures of the kit CLI tests: the real service, the Kubernetes API stand-in, running `kit`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kit.cli import main
from loadtests.stack import VENV_PYTHON, Backing, migrate, service, webhook_receiver
from tests.cli import kube_standin
from testsupport.servers import PostgresServer, RedisServer

SMOKE_PASSWORD = "smoke-Passw0rd!-kit"


@dataclass(frozen=True)
class RunningService:
    base_url: str
    database_url: str
    database: str
    smoke_email: str

    def smoke_argv(self, *extra: str) -> list[str]:
        """`kit smoke` against this service as its smoke account, then ``extra``."""
        return ["smoke", "--url", self.base_url, "--email", self.smoke_email, *extra]

    def pushed_journey_argv(self, gateway: str, namespace: str, environment: str) -> list[str]:
        """A journey that should pass (the account's password), with a JSON report, pushed to
        ``gateway`` as ``namespace`` in ``environment``."""
        return self.smoke_argv(
            "--password",
            SMOKE_PASSWORD,
            "--json",
            "--pushgateway",
            gateway,
            "--namespace",
            namespace,
            "--environment",
            environment,
        )


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def running_service(
    postgres: PostgresServer, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The API (uvicorn, PostgreSQL, Redis) and a smoke account with the manager role."""
    name = f"kit_{uuid.uuid4().hex[:10]}"
    postgres.psql(f'CREATE DATABASE "{name}"')
    with webhook_receiver() as webhook:
        backing = Backing(postgres.url(name), redis.url, webhook)
        migrate(VENV_PYTHON, backing)
        with service(backing, tmp_path_factory.mktemp("kit-service"), cpu=None, with_worker=False) as api:
            email = "smoke@kit.example.com"
            registered = httpx.post(
                f"{api.base_url}/api/v1/auth/register",
                json={"email": email, "password": SMOKE_PASSWORD, "name": "kit smoke"},
            )
            assert registered.status_code == 201, registered.text
            postgres.psql(f"UPDATE users SET role = 'manager' WHERE email = '{email}'", name)
            yield RunningService(api.base_url, backing.database_url, name, email)
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def kit(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `kit <args>` in this process (the console script's entry point) and capture it."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@dataclass
class StandIn:
    cluster: kube_standin.Cluster
    url: str
    kubeconfig: Path

    def args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig)]


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Callable[..., StandIn]]:
    """Start a Kubernetes API stand-in for (overlay, scenario); stopped after the test."""
    stack: list[object] = []
    import contextlib

    with contextlib.ExitStack() as exits:

        def start(env: str, scenario: str, **kwargs: object) -> StandIn:
            cluster = kube_standin.build(env, scenario)
            for key, value in kwargs.items():
                setattr(cluster, key, value)
            url = exits.enter_context(kube_standin.serve(cluster))
            config = kube_standin.kubeconfig(tmp_path / f"kubeconfig-{len(stack)}", url)
            stack.append(cluster)
            return StandIn(cluster, url, config)

        yield start

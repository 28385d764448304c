"""Service test fixtures: databases on both backends, the app with its lifespan, API users."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from app.identity.infrastructure.tables import users
from app.kernel.principal import Role
from app.main import create_app
from app.migrate import upgrade
from app.persistence.database import create_engine
from app.settings import Settings
from service.tests.builders import BACKENDS, DEFAULT_PASSWORD, ApiUser, MakeUser, make_settings, unique_email
from testsupport.servers import PostgresServer


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(make_settings(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def migrated_postgres_template(postgres: PostgresServer) -> str:
    """A database migrated once; each test copies it (CREATE DATABASE ... TEMPLATE)."""
    postgres.psql('CREATE DATABASE "migrated_template"')
    upgrade(make_settings(postgres.url("migrated_template")))
    return "migrated_template"


@pytest.fixture
def sqlite_url(migrated_sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "test.db"
    shutil.copy(migrated_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def postgres_url(postgres: PostgresServer, migrated_postgres_template: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_postgres_template}"')
    yield postgres.url(name)
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database on each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, registry=CollectorRegistry())
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def make_user(client: httpx.AsyncClient, settings: Settings) -> MakeUser:
    """Register a user through the API, set its role in the database, log it in."""

    async def make(role: Role = Role.MEMBER) -> ApiUser:
        email = unique_email(role.value)
        registered = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "T"}
        )
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["id"]
        if role is not Role.MEMBER:
            engine = create_engine(settings)
            async with engine.begin() as conn:
                await conn.execute(
                    update(users).where(users.c.id == uuid.UUID(user_id)).values(role=role.value)
                )
            await engine.dispose()
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
        assert login.status_code == 200, login.text
        client.cookies.clear()  # each user authenticates by its own bearer token
        return ApiUser(user_id, email, DEFAULT_PASSWORD, role, login.json()["accessToken"])

    return make

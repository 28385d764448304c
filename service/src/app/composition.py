"""Composition root: builds the process-wide objects once and hands them to routes.

Routes receive services through `Annotated[..., Depends(...)]` aliases; tests
swap pieces by building a Container with other parts (no DI framework).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_engine
from app.core.redis_pipeline import PipelinedRedis
from app.core.settings import Settings
from app.identity.application.services import IdentityService
from app.identity.infrastructure.passwords import Argon2PasswordHasher
from app.identity.infrastructure.revocation import TokenDenylist
from app.identity.infrastructure.tokens import JwtTokenService
from app.identity.infrastructure.unit_of_work import SqlIdentityUnitOfWork
from app.projects.application.services import ProjectService
from app.projects.infrastructure.unit_of_work import SqlProjectsUnitOfWork

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    tokens: JwtTokenService
    identity: IdentityService
    projects: ProjectService
    # What /health/ready checks, by name (filled by build_container; see readiness_checks).
    readiness_checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    # Token revocations (its own pipelined Redis connection); None in containers built by tests.
    denylist: TokenDenylist | None = None

    async def close(self) -> None:
        if self.denylist is not None:
            await self.denylist.close()
        await self.engine.dispose()


def jwt_secret_for(settings: Settings) -> str:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    # Only non-production environments get here (Settings refuses production without one).
    log.warning("JWT_SECRET is not set: using a random per-process secret (tokens die with the process)")
    return secrets.token_urlsafe(48)


def build_container(settings: Settings) -> Container:
    engine = create_engine(settings)
    tokens = JwtTokenService(
        jwt_secret_for(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        algorithm=settings.jwt_algorithm,
    )
    hasher = Argon2PasswordHasher(settings.password_hash_concurrency)
    denylist = TokenDenylist(
        PipelinedRedis(settings.redis_url, client_name=f"{settings.service_name}-revocation")
        if settings.redis_url is not None
        else None,
        token_ttl_seconds=settings.access_token_ttl_seconds,
        timeout_seconds=settings.redis_timeout_seconds,
        retry_seconds=settings.rate_limit_redis_retry_seconds,
    )
    container = Container(
        settings=settings,
        engine=engine,
        tokens=tokens,
        identity=IdentityService(lambda: SqlIdentityUnitOfWork(engine), hasher, tokens, denylist),
        projects=ProjectService(partial(SqlProjectsUnitOfWork, engine)),
        denylist=denylist,
    )
    container.readiness_checks = readiness_checks(engine)
    return container


def readiness_checks(engine: AsyncEngine) -> dict[str, Callable[[], Awaitable[object]]]:
    """Readiness = "this process can serve and is not draining" (draining is the router's part).

    - The database is in: no /api route answers without it, and a pod that cannot reach it
      (wrong DATABASE_URL or grants in a new release, a node that lost its route) must not
      take traffic, nor let a rollout replace working pods (maxUnavailable 0 waits on it).
      A shared database outage therefore takes every pod out at once: that pages through the
      alerts built for it (no available API replicas, the synthetic probe's SLI), and the
      probe's failureThreshold rides out blips (docs/service.md, "Health").
    - Redis is never in: the rate limiter degrades to per-process counting without it
      (rate_limit_storage_errors_total, alerted on), so a Redis outage must not empty the
      Service.
    """

    async def database() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return {"db": database}


# The request-path dependencies are `async def` (FastAPI runs a plain `def` dependency in
# the threadpool: a thread hop per dependency per request, ~30 % of the list endpoint's CPU in
# py-spy) and read the container straight from the app: every sub-dependency is one more
# node FastAPI solves on every request (see docs/performance-history.md).
def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_container(request: Request) -> Container:
    return container_of(request)


async def get_settings_dep(request: Request) -> Settings:
    return container_of(request).settings


async def get_identity_service(request: Request) -> IdentityService:
    return container_of(request).identity


async def get_project_service(request: Request) -> ProjectService:
    return container_of(request).projects


ContainerDep = Annotated[Container, Depends(get_container)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
IdentityServiceDep = Annotated[IdentityService, Depends(get_identity_service)]
ProjectServiceDep = Annotated[ProjectService, Depends(get_project_service)]

"""Application factory and server entry point (`python -m app.main`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import Depends, FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.responses import Response

from app.composition import Container, build_container
from app.core.http import install_error_handlers
from app.core.limits import BodySizeLimitMiddleware
from app.core.settings import Settings, get_settings
from app.health.router import router as health_router
from app.identity.presentation.router import auth_router, users_router
from app.observability.faults import inject_faults
from app.observability.logging import configure_logging
from app.observability.metrics import metrics_for
from app.observability.middleware import RequestEdgeMiddleware
from app.projects.presentation.router import router as projects_router

log = logging.getLogger("app")


def create_app(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    registry = registry if registry is not None else REGISTRY

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.container = container or build_container(settings)
        app.state.draining = False
        log.info("started", extra={"environment": settings.environment.value, "version": settings.version})
        try:
            yield
        finally:
            app.state.draining = True
            await app.state.container.close()
            log.info("stopped")

    app = FastAPI(
        title="Reference service",
        version=settings.version,
        description="Projects API of the platform reference kit.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    install_error_handlers(app)

    api_dependencies = [Depends(inject_faults)]
    for router in (auth_router, users_router, projects_router):
        app.include_router(router, dependencies=api_dependencies)
    app.include_router(health_router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # Outermost last: the edge middleware sees every response, including 413s.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RequestEdgeMiddleware, metrics=metrics_for(registry) if settings.metrics_enabled else None
    )
    return app


def run() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=int(settings.drain_timeout_seconds),
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    run()

"""Application factory and server entry point (`python -m app.main`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from types import FrameType

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, params
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.responses import Response

from app.composition import Container, build_container
from app.core.database import observe_checkout_wait
from app.core.http import install_error_handlers
from app.core.limits import BodySizeLimitMiddleware
from app.core.settings import Settings, get_settings
from app.edge.ratelimit import RateLimiter, RateLimitMiddleware, rate_limit_metrics_for
from app.edge.security import install_http_security
from app.edge.server_protocol import bounded_protocol
from app.health.router import router as health_router
from app.identity.presentation.router import auth_router, users_router
from app.observability.faults import inject_faults
from app.observability.logging import configure_logging
from app.observability.loop_lag import measure_event_loop_lag
from app.observability.metrics import metrics_for
from app.observability.middleware import RequestEdgeMiddleware
from app.observability.tracing import setup_tracing
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
    http_metrics = metrics_for(registry) if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = container or build_container(settings)
        app.state.container = running
        await running.identity.prepare()
        lag_task: asyncio.Task[None] | None = None
        if http_metrics is not None:
            http_metrics.db_pool.engine = running.engine
            observe_checkout_wait(running.engine, http_metrics.db_pool_wait.observe)
            lag_task = asyncio.create_task(measure_event_loop_lag(http_metrics.event_loop_lag.observe))
        log.info("started", extra={"environment": settings.environment.value, "version": settings.version})
        try:
            yield
        finally:
            # Reached after the server drained (see DrainingServer): nothing is in flight now.
            app.state.draining = True
            if lag_task is not None:
                lag_task.cancel()
            await running.close()
            await rate_limiter.close()
            if tracer_provider is not None:
                tracer_provider.shutdown()  # flushes the spans still batched
            log.info("stopped: connections and pools closed")

    app = FastAPI(
        title="Reference service",
        version=settings.version,
        description="Projects API of the platform reference kit.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        # No 307 to "<path without the slash>": its Location would carry the client's Host
        # header (a redirect to any host when TRUSTED_HOSTS is '*'). API clients use exact paths.
        redirect_slashes=False,
        # FastAPI's built-in OpenTelemetry stays off: tracing is set up in observability/tracing
        # with the app's own provider. Left on, it looks up the global providers (and an
        # environment variable) on every request: ~8 % of a liveness probe's CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Set before startup, not in the lifespan: a SIGTERM during startup must stay visible.
    app.state.draining = False
    install_error_handlers(app)
    rate_limit_metrics = rate_limit_metrics_for(registry) if settings.metrics_enabled else None
    rate_limiter = RateLimiter(settings, rate_limit_metrics)
    app.state.rate_limiter = rate_limiter

    # Every API request is first counted in its route class (RateLimitMiddleware, below);
    # login and register add their own stricter limits as route dependencies.
    api_dependencies = []
    if settings.fault_injection_error_ratio > 0:  # off: not one more dependency per request
        api_dependencies.append(Depends(inject_faults))
    # Routing tries routes in this order, each a regex match: probes first (the most frequent
    # requests, which would otherwise try every API route first), then the busiest API
    # routes. (/openapi.json lists paths in this order; its content does not change.)
    _add_routes(app, health_router)
    for router in (projects_router, auth_router, users_router):
        _add_routes(app, router, api_dependencies)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # Added innermost first. Request order: RequestEdge (request id, metrics, security headers
    # on every response, then the trusted-Host check: 400) > CORS (preflights; only when
    # CORS_ORIGINS is set) > body size (413) > rate limit on /api/ (429) > routing. Security
    # runs inside the edge's one call.
    app.add_middleware(RateLimitMiddleware, limiter=rate_limiter)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    edge_security = install_http_security(app, settings)
    app.add_middleware(RequestEdgeMiddleware, metrics=http_metrics, security=edge_security)
    if http_metrics is not None:
        http_metrics.build_info.labels(settings.version, settings.environment.value).set(1)
    tracer_provider = setup_tracing(app, settings)
    return app


def _add_routes(app: FastAPI, router: APIRouter, dependencies: Sequence[params.Depends] = ()) -> None:
    """A router's routes as the app's own routes, instead of app.include_router(router).

    FastAPI 0.163 resolves an included router's routes through an extra matching and
    dispatch layer on every request (measured: ~10 % of a liveness probe's CPU, ~40 us of
    a list request). Same paths, names, dependencies (`dependencies` run first, as
    include_router's would) and OpenAPI (a test compares the documents).
    """
    for route in router.routes:
        assert isinstance(route, APIRoute)  # plain routes only: nothing else to carry over
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            name=route.name,
            status_code=route.status_code,
            response_model=route.response_model,
            response_class=route.response_class,
            responses=route.responses,
            dependencies=[*dependencies, *route.dependencies],
            tags=list(route.tags),
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            deprecated=route.deprecated,
            operation_id=route.operation_id,
            include_in_schema=route.include_in_schema,
            openapi_extra=route.openapi_extra,
        )


# Allocations between young-generation collections. CPython's default (700) runs a collection
# every couple of requests here (one list page allocates thousands of objects), and every
# tenth of those also walks the middle generation. Request garbage is nearly all freed by
# reference counting, so collecting 50x less often costs little memory and ~5-10 % CPU less.
GC_YOUNG_THRESHOLD = 35_000


def settle_garbage_collector() -> None:
    """After startup: move what exists now (modules, app, pools: never garbage) out of the
    collector's sight, so no collection walks it again, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class DrainingServer(uvicorn.Server):
    """uvicorn with a drain phase in front of its own graceful shutdown.

    On SIGTERM (or SIGINT):
    1. readiness turns 503 at once (`app.state.draining`), while the server keeps
       accepting and serving for SHUTDOWN_DELAY_SECONDS, so endpoints controllers and
       load balancers stop routing here before the listener closes (no preStop hook
       needed); responses ask keep-alive clients to reconnect elsewhere;
    2. uvicorn's shutdown: the listener closes, in-flight requests finish, bounded by
       DRAIN_TIMEOUT_SECONDS (then cancelled);
    3. lifespan shutdown closes the Redis client and the database pool; exit status 0.
    A second signal skips the rest of the delay; a third forces the exit.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI, shutdown_delay_seconds: float) -> None:
        super().__init__(config)
        self.app = app
        self.shutdown_delay_seconds = shutdown_delay_seconds
        self.drain_started_at: float | None = None
        self._drain_logged = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            settle_garbage_collector()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: only plain assignments here (logging could deadlock on its lock).
        if self.drain_started_at is None:
            self.drain_started_at = time.monotonic()
            self.app.state.draining = True
        elif not self.should_exit:
            self.should_exit = True
        else:
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain_started_at is not None and not self.should_exit:
            if not self._drain_logged:
                self._drain_logged = True
                log.info(
                    "draining: readiness is 503, still serving",
                    extra={
                        "shutdown_delay_seconds": self.shutdown_delay_seconds,
                        "drain_timeout_seconds": self.config.timeout_graceful_shutdown,
                    },
                )
            if time.monotonic() - self.drain_started_at >= self.shutdown_delay_seconds:
                log.info("shutdown delay over: closing the listener, finishing in-flight requests")
                self.should_exit = True
        return await super().on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal after a graceful stop, so the process dies
        # "killed by SIGTERM"; a completed drain is a clean exit here (status 0).
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def run() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json, sql_echo=settings.db_echo)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout_seconds),
        loop="uvloop",
        # httptools with a bound on the request head and a deadline to receive each request.
        http=bounded_protocol(settings.http_max_head_bytes, settings.http_request_timeout_seconds),
        server_header=False,  # no "server: uvicorn" (the version hunt starts there)
    )
    server = DrainingServer(config, app, settings.shutdown_delay_seconds)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE: the port was taken or the app failed to start


if __name__ == "__main__":
    run()

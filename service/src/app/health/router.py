"""Liveness and readiness. Readiness names each check (composition.readiness_checks) and turns 503
while draining."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.composition import Container
from app.core.http import error_responses

router = APIRouter(tags=["health"])
log = logging.getLogger("app.health")


async def readiness(request: Request) -> tuple[int, dict[str, Any]]:
    container: Container = request.app.state.container
    if getattr(request.app.state, "draining", False):
        return 503, {"status": "draining", "checks": {}}
    checks = await _shared_checks(request.app.state, container)
    healthy = all(value == "ok" for value in checks.values())
    _log_transition(request, healthy, checks)
    return (200 if healthy else 503), {"status": "ok" if healthy else "unavailable", "checks": checks}


# One round of dependency checks serves every probe that arrives within this long, and probes
# that arrive while it runs wait for it (single flight): a flood of /health/ready calls costs
# one round of checks (SELECT 1) per second, and cannot exhaust the pool or time the checks out.
READINESS_CACHE_SECONDS = 1.0


async def _shared_checks(state: Any, container: Container) -> dict[str, str]:
    round_: tuple[float, asyncio.Task[dict[str, str]]] | None = getattr(state, "readiness_round", None)
    now = time.monotonic()
    if round_ is None or (round_[1].done() and now - round_[0] >= READINESS_CACHE_SECONDS):
        round_ = (now, asyncio.ensure_future(_check_dependencies(container)))
        state.readiness_round = round_
    return await asyncio.shield(round_[1])


async def _check_dependencies(container: Container) -> dict[str, str]:
    checks: dict[str, str] = {}
    probes = {name: probe() for name, probe in container.readiness_checks.items()}
    timeout = container.settings.readiness_check_timeout_seconds
    results = await asyncio.gather(
        *(asyncio.wait_for(probe, timeout) for probe in probes.values()), return_exceptions=True
    )
    for name, result in zip(probes, results, strict=True):
        checks[name] = "ok" if not isinstance(result, BaseException) else f"error: {type(result).__name__}"
    return checks


def _log_transition(request: Request, healthy: bool, checks: dict[str, str]) -> None:
    """One line when readiness changes, not one per probe."""
    state = request.app.state
    if getattr(state, "ready", None) is healthy:
        return
    state.ready = healthy
    if healthy:
        log.info("ready", extra={"checks": checks})
    else:
        log.warning("not ready: a dependency is failing", extra={"checks": checks})


_ALIVE = b'{"status":"ok"}'


# The probes' own 503 carries the readiness body (which check failed), not the error body.
_EDGE_ERRORS = error_responses(database=False)


@router.get("/health/live", include_in_schema=True, response_model=dict[str, str], responses=_EDGE_ERRORS)
async def live() -> Response:
    """200 while the process serves requests."""
    return Response(_ALIVE, media_type="application/json")  # the constant, not re-serialized per probe


@router.get(
    "/health/ready",
    responses={**_EDGE_ERRORS, 503: {"description": "A dependency is down or the pod drains"}},
)
async def ready(request: Request) -> JSONResponse:
    status, body = await readiness(request)
    return JSONResponse(body, status_code=status)


@router.get("/health", responses={**_EDGE_ERRORS, 503: {"description": "Same as /health/ready"}})
async def health(request: Request) -> JSONResponse:
    status, body = await readiness(request)
    return JSONResponse(body, status_code=status)

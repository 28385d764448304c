"""Baseline: a bare FastAPI app returning a constant, served like the service. The ceiling for
the service's liveness endpoint."""

from __future__ import annotations

from fastapi import FastAPI

from loadtests.bench.bare import serve

app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    serve(app)

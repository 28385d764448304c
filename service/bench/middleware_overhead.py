"""`make bench-middleware`: the cost of observability at the edge (access log, metrics).

Two copies of the same app run side by side, identical except that one has no
observability: its request-edge middleware records no metrics and writes no access line
(request ids, security headers and the Host check, which the edge also does, stay in both:
they are not what is measured). wrk measures each in turn (alternating rounds, best round
kept) on two routes:

* GET /health/live: a probe route (metrics and request id, no access line);
* GET /api/v1/projects without credentials: an ordinary API request answered 401
  with the error body (metrics, request id and one JSON access line).

Servers are pinned to core 0 and wrk to core 1 (taskset), one measurement at a
time. Prints requests/s for both and the overhead; the target is under 15 % on the trivial
route (the probe). The logged 401 is shown for information: its access line is the bulk of
its overhead, and the faster the app gets the larger that share reads.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import uvicorn

ROUTES = ("/health/live", "/api/v1/projects")
TRIVIAL_ROUTE = ROUTES[0]  # the target is set on a trivial route
TARGET_OVERHEAD = 0.15


def serve(edge: bool, port: int) -> None:
    """Run one copy of the app the way `python -m app.main` does, with or without the edge."""
    from starlette.middleware import Middleware

    from app.edge.middleware import RequestEdgeMiddleware
    from app.edge.security import EdgeSecurity
    from app.main import create_app
    from app.observability.logging import configure_logging
    from app.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    if not edge:
        edge_class: object = RequestEdgeMiddleware
        app.user_middleware = [
            Middleware(
                RequestEdgeMiddleware,
                metrics=None,
                security=cast("EdgeSecurity | None", m.kwargs["security"]),
            )
            if m.cls is edge_class
            else m
            for m in app.user_middleware
        ]
        logging.getLogger("app.access").disabled = True
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="uvloop", http="httptools"
    )
    uvicorn.Server(config).run()


@contextlib.contextmanager
def server(edge: bool, database_url: str) -> Iterator[str]:
    from testsupport.servers import free_port

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "JWT_SECRET": "bench-" + "x" * 40,
        "RATE_LIMIT_ENABLED": "false",  # its own cost is the load-test bench's business
        "LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "service.bench.middleware_overhead", "serve", str(port)]
    if edge:
        command.append("--edge")
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    # The access log is written (and formatted) for real, to a sink nobody reads.
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [*pin, *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench server did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk(url: str, seconds: float, connections: int) -> float:
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    out = subprocess.run(  # noqa: S603 - fixed wrk arguments
        [*pin, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    return float(match[1])


def measure(seconds: float, rounds: int, connections: int) -> dict[str, tuple[float, float]]:
    from app.migrate import upgrade
    from app.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="bench-middleware-"))
    database_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    upgrade(Settings(database_url=database_url))
    results: dict[str, tuple[float, float]] = {}
    try:
        with server(True, database_url) as with_edge, server(False, database_url) as without_edge:
            for route in ROUTES:
                best = {True: 0.0, False: 0.0}
                wrk(f"{with_edge}{route}", 1, connections)  # warm-up
                wrk(f"{without_edge}{route}", 1, connections)
                for _ in range(rounds):
                    for edge, base in ((True, with_edge), (False, without_edge)):
                        best[edge] = max(best[edge], wrk(f"{base}{route}", seconds, connections))
                results[route] = (best[True], best[False])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    serve_cmd = sub.add_parser("serve")
    serve_cmd.add_argument("port", type=int)
    serve_cmd.add_argument("--edge", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.edge, args.port)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk (make bench-middleware installs it as root)")
        return 1
    results = measure(args.seconds, args.rounds, args.connections)
    print(f"\n{'route':<22}{'with edge rps':>15}{'without rps':>14}{'overhead':>10}")
    overheads = {}
    for route, (with_edge, without_edge) in results.items():
        overheads[route] = 1 - with_edge / without_edge
        print(f"{route:<22}{with_edge:>15.0f}{without_edge:>14.0f}{overheads[route]:>9.1%}")
    trivial = overheads[TRIVIAL_ROUTE]
    verdict = "within" if trivial < TARGET_OVERHEAD else "OVER"
    print(
        f"\ntrivial route {trivial:.1%}: {verdict} the {TARGET_OVERHEAD:.0%} target"
        " (the logged 401 is for information)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A steady, bounded API load on loopback (async httpx) that records every request's outcome.

Open loop at a fixed rate (a tick every 1/rate s, at most `max_in_flight` requests waiting):
creates, lists and reads of projects by several users, so a fault meets reads and writes.
Every 2xx create is remembered as an acknowledged write, and the body of every 5xx is kept,
for the scenario to check afterwards. A `Balancer` plays the load balancer: it probes readiness
every 50 ms (the history tells when a fault was detected) and sends round robin over the API
processes, optionally only over those whose readiness answers 200 (as endpoints controllers
do); a connection refused is retried on another process, because it was never accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

PROJECTS = "/api/v1/projects"
PASSWORD = "correct horse battery staple"  # same as service/tests/builders.DEFAULT_PASSWORD


@dataclass
class Outcome:
    kind: str  # create | list | get
    started: float  # time.monotonic()
    ended: float
    status: int | None = None  # None: no HTTP answer
    # A transport error after the connection was accepted (reset, timeout): the request failed.
    error: str | None = None
    refused: int = 0  # connections refused before one accepted the request (never accepted)
    body: bytes = b""  # kept for 5xx answers only
    project_id: str | None = None  # on a 2xx create: the acknowledged write

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def failed(self) -> bool:
        return self.error is not None or (self.status is not None and self.status >= 500)


@dataclass
class Balancer:
    backends: list[str]
    route_by_readiness: bool = False
    probe_interval: float = 0.05
    ready: dict[str, bool] = field(default_factory=dict)
    # Every probe: (time.monotonic(), backend, status or None when no answer).
    history: list[tuple[float, str, int | None]] = field(default_factory=list)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.ready = dict.fromkeys(self.backends, True)

    def candidates(self) -> list[str]:
        if not self.route_by_readiness:
            return list(self.backends)
        ready = [b for b in self.backends if self.ready.get(b)]
        return ready or list(self.backends)  # nothing ready: a balancer still tries them all

    def pick(self, exclude: Sequence[str] = ()) -> str:
        choices = [b for b in self.candidates() if b not in exclude] or self.candidates()
        return choices[next(self._turn) % len(choices)]

    def replace(self, old: str, new: str) -> None:
        """A process was replaced (rolled): route to the new address from now on."""
        self.backends = [new if b == old else b for b in self.backends]
        self.ready.pop(old, None)
        self.ready[new] = False

    def first_probe(self, after: float, ready: bool) -> float | None:
        """When readiness was first seen (not) ready after `after`, on any backend."""
        for at, _, status in self.history:
            if at >= after and (status == 200) is ready:
                return at
        return None

    async def probe(self, stop: asyncio.Event) -> None:
        """Every `probe_interval`, all backends at once; no answer within 1 s counts as not ready."""
        async with httpx.AsyncClient(timeout=1) as http:
            while not stop.is_set():
                await asyncio.gather(*(self._probe_one(http, backend) for backend in list(self.backends)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.probe_interval)

    async def _probe_one(self, http: httpx.AsyncClient, backend: str) -> None:
        status: int | None = None
        with contextlib.suppress(httpx.HTTPError):
            status = (await http.get(f"{backend}/health/ready")).status_code
        self.ready[backend] = status == 200
        self.history.append((time.monotonic(), backend, status))


@dataclass
class LoadResult:
    outcomes: list[Outcome]

    @property
    def sent(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def acknowledged_writes(self) -> list[str]:
        return [o.project_id for o in self.outcomes if o.project_id is not None]

    def answered(self, kinds: Sequence[str] = ("create", "list", "get")) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind in kinds and o.status is not None and o.status < 500]

    def share_slower_than(self, seconds: float, kinds: Sequence[str]) -> float:
        """Share of the non-5xx answers of `kinds` slower than `seconds` (the latency SLI's bad events)."""
        answered = self.answered(kinds)
        return sum(o.seconds > seconds for o in answered) / len(answered) if answered else 0.0

    def percentile(self, q: float, kinds: Sequence[str] = ("create", "list", "get")) -> float:
        times = sorted(o.seconds for o in self.answered(kinds))
        if not times:
            return math.nan
        return times[min(len(times) - 1, math.ceil(q * len(times)) - 1)]

    def first(
        self, after: float, *, ok: bool, kinds: Sequence[str] = ("create", "list", "get")
    ) -> float | None:
        """When the first request started after `after` ended well (ok) or failed: its end time."""
        for outcome in sorted(self.outcomes, key=lambda o: o.ended):
            if outcome.started >= after and outcome.kind in kinds and (not outcome.failed) is ok:
                if ok and outcome.status is None:
                    continue
                return outcome.ended
        return None


async def api_users(base_url: str, count: int, attempts: int = 5) -> list[str]:
    """Register and log in `count` members; their bearer tokens.

    A 503 (the database busy or briefly unavailable) is retried after its Retry-After, as a
    client should; anything else unexpected fails at once.
    """
    tokens = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def post(path: str, body: dict[str, str]) -> httpx.Response:
            for _ in range(attempts - 1):
                response = await http.post(path, json=body)
                if response.status_code != 503:
                    return response.raise_for_status()
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            return (await http.post(path, json=body)).raise_for_status()

        for index in range(count):
            email = f"chaos{index}-{uuid.uuid4().hex[:8]}@example.com"
            await post(
                "/api/v1/auth/register", {"email": email, "password": PASSWORD, "name": f"Load {index}"}
            )
            login = await post("/api/v1/auth/login", {"email": email, "password": PASSWORD})
            tokens.append(str(login.json()["accessToken"]))
    return tokens


@dataclass
class SteadyLoad:
    """Requests at `rate` per second until `stop` is set, `duration` is over or `max_requests` are sent."""

    balancer: Balancer
    tokens: list[str]
    rate: float
    duration: float
    max_requests: int = 100_000
    max_in_flight: int = 64
    timeout: float = 10.0
    outcomes: list[Outcome] = field(default_factory=list)
    _created: list[tuple[str, str]] = field(default_factory=list)  # (token, project id)

    async def run(self, stop: asyncio.Event | None = None) -> LoadResult:
        stop = stop or asyncio.Event()
        gate = asyncio.Semaphore(self.max_in_flight)
        limits = httpx.Limits(
            max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight
        )
        kinds = itertools.cycle(("create", "list", "get"))
        users = itertools.cycle(self.tokens)
        started = time.monotonic()
        probing = asyncio.Event()
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as http:
            probe = asyncio.create_task(self.balancer.probe(probing))
            try:
                async with asyncio.TaskGroup() as requests:  # left when every request has its outcome
                    for sent in range(self.max_requests):
                        if stop.is_set() or time.monotonic() - started >= self.duration:
                            break
                        await gate.acquire()
                        requests.create_task(self._one(http, next(kinds), next(users), sent, gate))
                        next_tick = started + (sent + 1) / self.rate
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), max(0.0, next_tick - time.monotonic()))
            finally:
                probing.set()
                await probe
        return LoadResult(self.outcomes)

    async def _one(
        self, http: httpx.AsyncClient, kind: str, token: str, sequence: int, gate: asyncio.Semaphore
    ) -> None:
        try:
            headers = {"Authorization": f"Bearer {token}"}
            own = [project for owner, project in self._created if owner == token]
            if kind == "get" and not own:
                kind = "list"
            if kind == "create":
                method, path, body = "POST", PROJECTS, {"name": f"chaos {sequence}", "type": "internal"}
            elif kind == "list":
                method, path, body = "GET", PROJECTS, None
            else:
                method, path, body = "GET", f"{PROJECTS}/{own[sequence % len(own)]}", None
            outcome = await self._send(http, kind, method, path, headers, body)
            self.outcomes.append(outcome)
            if outcome.project_id is not None:
                self._created.append((token, outcome.project_id))
        finally:
            gate.release()

    async def _send(
        self,
        http: httpx.AsyncClient,
        kind: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: object,
    ) -> Outcome:
        started = time.monotonic()
        refused = 0
        tried: list[str] = []
        while True:
            backend = self.balancer.pick(exclude=tried)
            try:
                response = await http.request(method, f"{backend}{path}", headers=headers, json=body)
            except httpx.ConnectError as exc:
                refused += 1  # never accepted: a balancer tries another process
                tried.append(backend)
                if refused >= 2 * len(self.balancer.backends):
                    return Outcome(
                        kind, started, time.monotonic(), error=f"refused: {exc!r}", refused=refused
                    )
                await asyncio.sleep(0.02)
                continue
            except httpx.HTTPError as exc:
                return Outcome(kind, started, time.monotonic(), error=repr(exc), refused=refused)
            outcome = Outcome(kind, started, time.monotonic(), status=response.status_code, refused=refused)
            if response.status_code >= 500:
                outcome.body = response.content
            elif kind == "create" and response.status_code == 201:
                outcome.project_id = str(response.json()["id"])
            return outcome

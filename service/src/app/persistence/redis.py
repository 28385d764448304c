"""The process's Redis client: one pipelined connection (rate limits, token revocations).

redis-py's asyncio client checks a connection out of its pool, packs the command, writes,
waits for the reply and checks the connection back in, for every command: about 100 us of
CPU per call, measured here, more than the rest of a rate-limited request's own work. On
this connection every caller's command is written at once, without waiting for earlier
replies (Redis answers each connection in order), and a reply resolves the oldest waiting
future: a command costs one write and one future. hiredis parses the replies.

Chosen by measurement (`make bench-redis`: 32 tasks running the rate limiter's script on
uvloop): this connection costs ~20 us of client CPU per call, redis-py's asyncio client
(hiredis) ~135 us and coredis ~210 us; every authenticated API request makes two calls
(rate limit, revocation check), so redis-py would cost ~230 us of a list request's ~1.5 ms.
valkey-glide did not answer within its timeouts on the shared 2-core runner.

Timeouts belong to the caller (`asyncio.timeout`): a reply that comes after its caller gave
up is read and dropped, so the order holds. A lost connection fails every waiting command
with ConnectionError and the next command reconnects. URLs are read like redis-py reads
them (`RedisAddress`), without importing redis-py: its asyncio client adds ~22 MB to the
API's resident memory for a URL parser.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis


class RedisReplyError(Exception):
    """Redis answered with an error (e.g. NOSCRIPT, WRONGTYPE, NOAUTH)."""


Arg = str | bytes | int | float


def encode_command(args: tuple[Arg, ...]) -> bytes:
    """RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class _ReplyProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.lost: Exception | None = None
        self._reader = hiredis.Reader(replyError=RedisReplyError)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            future = self.waiting.popleft()
            if not future.done():  # its caller may have timed out
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = ConnectionError(f"Redis connection lost: {exc or 'closed by the server'}")
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            raise self.lost or ConnectionError("Redis connection closed")
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(command)
        return future


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_TLS_OPTIONS = frozenset(
    {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname"}
)


@dataclass(frozen=True)
class RedisAddress:
    """Where and how to connect, from a REDIS_URL as redis-py reads it.

    `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS, the server's
    certificate and name verified against the system's CAs unless the query says otherwise:
    `ssl_ca_certs`, `ssl_certfile`/`ssl_keyfile` for a client certificate, `ssl_cert_reqs`
    none|optional|required, `ssl_check_hostname` true|false), `unix:///path/to/socket`;
    `?db=N` everywhere. Any other query option is refused by name, not silently ignored.
    """

    host: str = "localhost"
    port: int = 6379
    unix_path: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"REDIS_URL: scheme {parts.scheme!r} is not redis://, rediss:// or unix://")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - _TLS_OPTIONS - {"db"}
        if unknown or (parts.scheme != "rediss" and set(query) & _TLS_OPTIONS):
            raise ValueError(f"REDIS_URL: unsupported option(s) {', '.join(sorted(unknown or query))}")
        db = query.get("db") or (parts.path.lstrip("/") if parts.scheme != "unix" else "") or "0"
        if not db.isdigit():
            raise ValueError(f"REDIS_URL: database {db!r} is not a number")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if parts.scheme == "unix":
            return cls(unix_path=unquote(parts.path), username=username, password=password, db=int(db))
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            username=username,
            password=password,
            db=int(db),
            tls=_tls_context(query) if parts.scheme == "rediss" else None,
        )


def _tls_context(query: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    if query.get("ssl_certfile"):
        context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile"))
    requirement = query.get("ssl_cert_reqs", "required").lower()
    if requirement not in _CERT_REQS:
        raise ValueError(f"REDIS_URL ssl_cert_reqs={requirement!r}: use none, optional or required")
    check_hostname = query.get("ssl_check_hostname", "true").lower() not in ("false", "0", "no")
    context.check_hostname = check_hostname and _CERT_REQS[requirement] != ssl.CERT_NONE
    context.verify_mode = _CERT_REQS[requirement]
    return context


class PipelinedRedis:
    def __init__(self, url: str, *, client_name: str | None = None) -> None:
        self.address = RedisAddress.from_url(url)
        self._client_name = client_name
        self._protocol: _ReplyProtocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def execute(self, *args: Arg) -> Any:
        """Send one command and return its reply; raises RedisReplyError, ConnectionError, OSError."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        reply = await protocol.send(encode_command(args))
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    async def _connect(self) -> _ReplyProtocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # concurrent callers share one attempt
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            protocol = await self._open()
            try:
                await self._handshake(protocol)
            except BaseException:
                if protocol.transport is not None:
                    protocol.transport.close()
                raise
            self._protocol = protocol
            return protocol

    async def _open(self) -> _ReplyProtocol:
        loop = asyncio.get_running_loop()
        address = self.address
        if address.unix_path is not None:
            _, protocol = await loop.create_unix_connection(_ReplyProtocol, address.unix_path)
            return protocol
        _, protocol = await loop.create_connection(
            _ReplyProtocol,
            address.host,
            address.port,
            ssl=address.tls,
            server_hostname=address.host if address.tls else None,
        )
        return protocol

    async def _handshake(self, protocol: _ReplyProtocol) -> None:
        address = self.address
        commands: list[tuple[Arg, ...]] = []
        if address.password is not None:
            user = address.username
            commands.append(("AUTH", user, address.password) if user else ("AUTH", address.password))
        if address.db:
            commands.append(("SELECT", address.db))
        if self._client_name:
            commands.append(("CLIENT", "SETNAME", self._client_name))
        replies = [protocol.send(encode_command(command)) for command in commands]
        for reply in replies:
            result = await reply
            if isinstance(result, RedisReplyError):
                raise result

"""The process's Redis client: one pipelined connection (rate limits, token revocations).

redis-py's asyncio client checks a connection out of its pool, packs the command, writes,
waits for the reply and checks the connection back in, for every command: about 100 us of
CPU per call, measured here, more than the rest of a rate-limited request's own work. On
this connection every caller's command is written at once, without waiting for earlier
replies (Redis answers each connection in order), and a reply resolves the oldest waiting
future: a command costs one write and one future. hiredis parses the replies.

Timeouts belong to the caller (`asyncio.timeout`): a reply that comes after its caller gave
up is read and dropped, so the order holds. A lost connection fails every waiting command
with ConnectionError and the next command reconnects. URLs are read like redis-py reads
them (redis://, rediss:// with certificate verification, unix://; user, password, db).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url


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


def _tls_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """rediss:// as redis-py reads it: ssl_ca_certs, ssl_certfile/ssl_keyfile (client
    certificate), ssl_cert_reqs and ssl_check_hostname from the URL's query; by default the
    server's certificate and name are verified against the system's CAs."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    requirement = options.get("ssl_cert_reqs", "required")
    if isinstance(requirement, str):
        if requirement not in _CERT_REQS:
            raise ValueError(f"REDIS_URL ssl_cert_reqs={requirement!r}: use none, optional or required")
        requirement = _CERT_REQS[requirement]
    context.check_hostname = bool(options.get("ssl_check_hostname", True)) and requirement != ssl.CERT_NONE
    context.verify_mode = requirement
    return context


class PipelinedRedis:
    def __init__(self, url: str, *, client_name: str | None = None) -> None:
        self._options = parse_url(url)
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
        options = self._options
        if "path" in options:
            _, protocol = await loop.create_unix_connection(_ReplyProtocol, options["path"])
            return protocol
        tls = (
            _tls_context(cast(Mapping[str, Any], options))
            if options.get("connection_class") is SSLConnection
            else None
        )
        host = options.get("host", "localhost")
        _, protocol = await loop.create_connection(
            _ReplyProtocol, host, options.get("port", 6379), ssl=tls, server_hostname=host if tls else None
        )
        return protocol

    async def _handshake(self, protocol: _ReplyProtocol) -> None:
        options = self._options
        commands: list[tuple[Arg, ...]] = []
        if options.get("password") is not None:
            user = options.get("username")
            commands.append(("AUTH", user, options["password"]) if user else ("AUTH", options["password"]))
        if options.get("db"):
            commands.append(("SELECT", options["db"]))
        if self._client_name:
            commands.append(("CLIENT", "SETNAME", self._client_name))
        replies = [protocol.send(encode_command(command)) for command in commands]
        for reply in replies:
            result = await reply
            if isinstance(result, RedisReplyError):
                raise result

"""The rate limiter's pipelined Redis connection, against a real Redis."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio.connection import SSLConnection, parse_url

from app.persistence.redis import PipelinedRedis, RedisAddress, RedisReplyError, encode_command
from testsupport.servers import RedisServer, redis_server, stop_process, wait_until


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def client(own_redis: RedisServer) -> AsyncIterator[PipelinedRedis]:
    connection = PipelinedRedis(own_redis.url, client_name="pipeline-test")
    yield connection
    await connection.close()


def test_commands_are_written_as_resp_arrays_of_bulk_strings() -> None:
    assert encode_command(("SET", "k", 42, 1.5, b"\x00")) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n42\r\n$3\r\n1.5\r\n$1\r\n\x00\r\n"
    )
    assert encode_command(("GET", "é")) == b"*2\r\n$3\r\nGET\r\n$2\r\n\xc3\xa9\r\n"


async def test_concurrent_commands_share_one_connection_and_get_their_own_replies(
    client: PipelinedRedis, own_redis: RedisServer
) -> None:
    replies = await asyncio.gather(*(client.execute("INCR", "counter") for _ in range(300)))
    assert sorted(replies) == list(range(1, 301))
    assert replies == sorted(replies)  # written in call order, answered in order
    assert await client.execute("SET", "greeting", "hello") == b"OK"
    assert await client.execute("GET", "greeting") == b"hello"
    assert await client.execute("GET", "missing") is None
    with redis_sync.Redis.from_url(own_redis.url, socket_timeout=10) as admin:
        names = [c["name"] for c in admin.client_list()]
    assert names.count("pipeline-test") == 1


async def test_an_error_reply_raises_and_the_connection_keeps_working(client: PipelinedRedis) -> None:
    await client.execute("SET", "text", "not a number")
    with pytest.raises(RedisReplyError, match="not an integer"):
        await client.execute("INCR", "text")
    assert await client.execute("PING") == b"PONG"


async def test_a_reply_after_its_caller_gave_up_is_dropped_and_order_holds(client: PipelinedRedis) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.execute("BLPOP", "never-filled", "0.3")  # the server answers nil at 0.3 s
    # Written behind the abandoned BLPOP: this reply must be PING's, not BLPOP's late nil.
    assert await client.execute("PING") == b"PONG"


async def test_a_lost_connection_fails_waiting_commands_and_the_next_command_reconnects(
    client: PipelinedRedis, own_redis: RedisServer
) -> None:
    assert await client.execute("PING") == b"PONG"
    waiting = asyncio.ensure_future(client.execute("BLPOP", "never-filled", "5"))
    await asyncio.sleep(0.05)
    with redis_sync.Redis.from_url(own_redis.url, socket_timeout=10) as admin:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    with pytest.raises(ConnectionError, match="lost"):
        await asyncio.wait_for(waiting, 2)
    assert await client.execute("PING") == b"PONG"  # a fresh connection

    own_redis.stop()
    # Lost if the PING went down the dying connection, refused once nothing listens.
    with pytest.raises(ConnectionError):
        await client.execute("PING")
    with pytest.raises(ConnectionRefusedError):
        await client.execute("PING")
    own_redis.start_again()
    assert await client.execute("PING") == b"PONG"


async def test_password_user_and_database_come_from_the_url(own_redis: RedisServer) -> None:
    with redis_sync.Redis.from_url(own_redis.url, socket_timeout=10) as admin:
        admin.execute_command("ACL", "SETUSER", "limiter", "on", ">s3cret", "~*", "+@all")
        admin.config_set("requirepass", "default-pass")
    port = own_redis.port
    as_user = PipelinedRedis(f"redis://limiter:s3cret@127.0.0.1:{port}/3")
    as_default = PipelinedRedis(f"redis://:default-pass@127.0.0.1:{port}/0")
    wrong = PipelinedRedis(f"redis://limiter:nope@127.0.0.1:{port}/0")
    anonymous = PipelinedRedis(f"redis://127.0.0.1:{port}/0")
    try:
        await as_user.execute("SET", "where", "db3")
        assert await as_default.execute("GET", "where") is None  # db 0
        assert await as_default.execute("SELECT", 3) == b"OK"
        assert await as_default.execute("GET", "where") == b"db3"
        with pytest.raises(RedisReplyError, match="WRONGPASS"):
            await wrong.execute("PING")
        with pytest.raises(RedisReplyError, match="NOAUTH"):
            await anonymous.execute("PING")
    finally:
        for connection in (as_user, as_default, wrong, anonymous):
            await connection.close()


async def test_a_unix_socket_url_is_honoured(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connection = PipelinedRedis(f"unix://{socket_path}?db=2")
    try:
        wait_until(socket_path.exists, 10, "Redis on a unix socket")
        assert await connection.execute("SET", "k", "v") == b"OK"
        assert b"db=2" in await connection.execute("CLIENT", "INFO")
    finally:
        await connection.close()
        stop_process(server, grace=10)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://cache.internal:6380/3",
        "redis://:s%40cret@cache.internal/1",
        "redis://app:pw@cache.internal:6379?db=2",
        "rediss://app:pw@cache.example.com:6380/0",
        "unix:///run/redis.sock?db=4",
    ],
)
def test_urls_are_read_as_redis_py_reads_them(url: str) -> None:
    ours = RedisAddress.from_url(url)
    theirs = parse_url(url)
    assert (ours.username, ours.password, ours.db) == (
        theirs.get("username"),
        theirs.get("password"),
        theirs.get("db", 0),
    )
    if "path" in theirs:
        assert ours.unix_path == theirs["path"]
    else:
        assert (ours.host, ours.port) == (theirs["host"], theirs.get("port", 6379))
    assert (ours.tls is not None) == (theirs.get("connection_class") is SSLConnection)


def test_tls_options_from_the_url_are_honoured() -> None:
    strict = RedisAddress.from_url("rediss://cache.example.com").tls
    assert strict is not None and strict.verify_mode is ssl.CERT_REQUIRED and strict.check_hostname
    relaxed = RedisAddress.from_url(
        "rediss://cache.example.com?ssl_cert_reqs=none&ssl_check_hostname=false"
    ).tls
    assert relaxed is not None and relaxed.verify_mode is ssl.CERT_NONE and not relaxed.check_hostname
    named = RedisAddress.from_url(
        "rediss://cache.example.com?ssl_cert_reqs=required&ssl_check_hostname=false"
    ).tls
    assert named is not None and named.verify_mode is ssl.CERT_REQUIRED and not named.check_hostname


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://cache.example.com", "scheme 'http'"),
        ("redis://cache.example.com?socket_timeout=5", "unsupported option(s) socket_timeout"),
        ("redis://cache.example.com?ssl_cert_reqs=none", "unsupported option(s) ssl_cert_reqs"),
        ("redis://cache.example.com/zero", "database 'zero' is not a number"),
        ("rediss://cache.example.com?ssl_cert_reqs=maybe", "ssl_cert_reqs='maybe'"),
    ],
)
def test_a_url_the_client_cannot_honour_is_refused_by_name(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RedisAddress.from_url(url)

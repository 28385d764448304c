"""uvicorn's httptools protocol with the bounds it lacks: request head size and receipt deadline.

Without them one unauthenticated connection could stall the event loop (httptools' cost for
a huge header grows faster than its size: 80 MB took 7 s of CPU) or hold a socket forever
(slowloris: a connection that sends nothing, or trickles its headers or body), before any
rate limit runs. With them the port is safe without a proxy in front:

- a request line plus headers larger than HTTP_MAX_HEAD_BYTES: 431, connection closed;
- a request not fully received HTTP_REQUEST_TIMEOUT_SECONDS after its first byte, or a new
  connection that sends nothing for as long: 408 (or, once the app has the request, the
  connection is closed and the app sees the client disconnect).

Counted per chunk the kernel hands over (at most one chunk past the bound is parsed).
Idle keep-alive connections keep uvicorn's own timeout (TIMEOUT_KEEP_ALIVE, 5 s).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.api.errors import error_body


class HeadTooLargeError(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes: ClassVar[int] = 32 * 1024
    request_timeout_seconds: ClassVar[float] = 20.0

    _head_bytes = 0  # raw bytes received while the current head is incomplete
    _parsed_head_bytes = 0  # the current head's URL, names and values, as parsed
    _head_pending = True  # the current request's headers are not complete yet
    _refused = False
    _receipt_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_receipt_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_receipt_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._receipt_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._start_receipt_timer()  # the first byte of the next request on this connection
        if self._head_pending:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_pending and self._head_bytes > self.max_head_bytes:
            self._refuse(431, f"Request line and headers exceed {self.max_head_bytes} bytes")

    def on_url(self, url: bytes) -> None:
        self._parsed_head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_head_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_pending = False
        self._head_bytes = 0
        if self._parsed_head_bytes > self.max_head_bytes:
            # A whole head that arrived in one chunk: refused before the app sees it; the
            # exception stops the parser (uvicorn's 400 for it is suppressed below).
            self._refuse(431, f"Request line and headers exceed {self.max_head_bytes} bytes")
            raise HeadTooLargeError
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # after our own 431/408 the connection is already closing
            super().send_400_response(msg)

    def on_message_complete(self) -> None:
        self._cancel_receipt_timer()
        super().on_message_complete()

    def on_message_begin(self) -> None:
        self._head_pending = True  # the parser saw the first byte of the next request
        self._parsed_head_bytes = 0
        super().on_message_begin()

    def _start_receipt_timer(self) -> None:
        self._receipt_timer = self.loop.call_later(self.request_timeout_seconds, self._receipt_timed_out)

    def _cancel_receipt_timer(self) -> None:
        if self._receipt_timer is not None:
            self._receipt_timer.cancel()
            self._receipt_timer = None

    def _receipt_timed_out(self) -> None:
        self._receipt_timer = None
        if self.transport.is_closing():
            return
        if self._head_pending:
            self._refuse(408, "Request not received in time")
        else:
            # The app has the request and may be answering: no second response, just the end.
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        self._refused = True
        body = orjson.dumps(error_body(status, message, path=""))
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def bounded_protocol(max_head_bytes: int, request_timeout_seconds: float) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for uvicorn.Config(http=...), with this server's bounds."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes, "request_timeout_seconds": request_timeout_seconds},
    )

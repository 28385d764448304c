"""Optional tracing: off by default; on, spans reach a real OTLP/HTTP endpoint, log lines carry ids."""

from __future__ import annotations

import gzip
import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.observability.logging import JsonFormatter
from service.tests.builders import make_settings


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: decodes what the exporter posts to /v1/traces."""

    spans: list[Span]
    paths: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        self.server.paths.append(self.path)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.server.spans.extend(scope_spans.spans)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(("127.0.0.1", 0), _Handler)
    server.spans, server.paths = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_spans_are_exported_and_log_lines_carry_their_trace_id(
    sqlite_url: str, collector: Collector
) -> None:
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    app = create_app(
        make_settings(sqlite_url, otel_exporter_otlp_endpoint=endpoint), registry=CollectorRegistry()
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    previous_level = access.level
    access.setLevel(logging.INFO)
    try:
        async with LifespanManager(app):  # leaving it shuts the provider down: spans are flushed
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                assert (await http.get("/api/v1/projects")).status_code == 401
                assert (await http.get("/health/live")).status_code == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(previous_level)

    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["route"] == "/api/v1/projects"
    assert len(line["trace_id"]) == 32 and len(line["span_id"]) == 16
    assert set(collector.paths) == {"/v1/traces"}
    server_spans = [span for span in collector.spans if span.kind == Span.SPAN_KIND_SERVER]
    assert [span.name for span in server_spans] == ["GET /api/v1/projects"]  # probes make no spans
    assert server_spans[0].trace_id.hex() == line["trace_id"]


# What tracing would load. (redis-py imports the OTel *metrics* SDK by itself; that is not ours.)
TRACING_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation.fastapi",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


def test_tracing_is_off_by_default_and_loads_nothing(sqlite_url: str) -> None:
    script = (
        "import sys\n"
        "from app.main import create_app\n"
        "from service.tests.builders import make_settings\n"
        f"app = create_app(make_settings({sqlite_url!r}))\n"
        f"print([m for m in {TRACING_MODULES!r} if m in sys.modules])\n"
        "print(getattr(app, '_is_instrumented_by_opentelemetry', False))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["[]", "False"]

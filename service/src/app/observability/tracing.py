"""Optional OpenTelemetry tracing: on when OTEL_EXPORTER_OTLP_ENDPOINT is set, off otherwise.

Off costs nothing: the SDK, the exporter and the instrumentation are imported only when
an endpoint is configured. On, every request gets a server span (probes and scrapes
excluded), spans go to `<endpoint>/v1/traces` over OTLP/HTTP in batches, and every log
line written inside a span carries its `trace_id` and `span_id`.

The provider is the app's own (not the process-global one), so an app built twice in
one process (tests) never inherits another app's exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.observability.logging import set_trace_ids_provider
from app.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

# Regexes searched in the URL: liveness/readiness probes and scrapes make no spans.
EXCLUDED_URLS = "/health,/metrics"
EXPORT_TIMEOUT_SECONDS = 5.0


def _current_trace_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def tracer_provider_for(settings: Settings) -> TracerProvider | None:
    """The OTLP-exporting provider when an endpoint is configured, else None (no tracing)."""
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": settings.version,
            "deployment.environment.name": settings.environment.value,
        }
    )
    provider = TracerProvider(resource=resource)
    # The endpoint is the collector's base URL (as the OTel env var means it): add the signal path.
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=EXPORT_TIMEOUT_SECONDS)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    """Trace `app`'s requests (as its outermost layer) and put trace ids on log lines."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    set_trace_ids_provider(_current_trace_ids)

"""OpenTelemetry for a ``BatchClient``: ``instrument(client)`` (the ``otel`` extra).

Built on the client's ``event_hooks`` only, so it adds nothing to a client that
is not instrumented.  What it records:

* a span per run: ``aiobatch scan``, ``aiobatch results``, ``aiobatch wait``,
  ``aiobatch retry_failed``, under the caller's current span (a results
  stream's item scan, a retry run's scan, under their run);
* a CLIENT span per HTTP attempt, named ``{method} {url.template}`` after the
  HTTP client semantic conventions (``http.request.method``, ``url.template``
  rather than the URL, which holds ids and tokens, ``server.address``,
  ``server.port``, ``http.response.status_code``, ``http.request.resend_count``,
  ``error.type``), under the span of the run it works for;
* metrics: ``http.client.request.duration`` (s), ``http.client.active_requests``,
  ``aiobatch.client.requests``, ``aiobatch.client.retries``,
  ``aiobatch.client.rate_limited`` (429s), ``aiobatch.pages``, ``aiobatch.items``
  and ``aiobatch.bytes`` (delivered to the consumer), ``aiobatch.results.failed``
  (by ``aiobatch.error_kind``).

Every run span ends (``aiobatch.outcome``): ``finished``, ``failed`` /
``timed_out``, or ``stopped`` for a scan or watch cancelled, closed or left
before its end (a ``break``: ended as the iterator is dropped, even after the
client closed, since this hook is a plain function).

``opentelemetry-instrumentation-aiohttp-client`` would add a second span per
request (with the full URL): use one or the other for aiobatch's session (see
the README's "Observability" section).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("aiobatch.otel needs OpenTelemetry: pip install 'aiobatch[otel]'") from exc

from . import __version__
from .events import (
    Event,
    RateLimitedEvent,
    RequestEvent,
    ResponseEvent,
    ResultEvent,
    RetryEvent,
    ScanEvent,
    WaitEvent,
    current_run,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from ._client import BatchClient

__all__ = ["instrument"]

_HOOKED = ("request", "response", "retry", "rate_limited", "scan", "result", "wait")


def instrument(
    client: BatchClient,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace and count everything ``client`` does, with the given providers
    (default: the global ones).  Call it once per client, before using it."""
    if getattr(client, "_otel_instrumented", False):
        return
    telemetry = _Telemetry(client.config.base_url, tracer_provider, meter_provider)
    for name in _HOOKED:
        client.add_event_hook(name, telemetry)
    client._otel_instrumented = True  # type: ignore[attr-defined]


class _Telemetry:
    """One instrumented client's spans in flight and its instruments."""

    def __init__(
        self,
        base_url: str,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
    ) -> None:
        self.tracer = trace.get_tracer("aiobatch", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("aiobatch", __version__, meter_provider=meter_provider)
        url = urlsplit(base_url)
        self.server: dict[str, Any] = {
            "server.address": url.hostname or "",
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        # Keyed by the request event: an attempt that was cancelled leaves no entry.
        self.requests: weakref.WeakKeyDictionary[RequestEvent, Span] = weakref.WeakKeyDictionary()
        self.runs: dict[int, Span] = {}
        self.delivered: dict[int, int] = {}
        self.duration = meter.create_histogram(
            "http.client.request.duration", unit="s", description="HTTP attempts"
        )
        self.active = meter.create_up_down_counter(
            "http.client.active_requests", unit="{request}", description="Attempts in flight"
        )
        self.count_requests = meter.create_counter("aiobatch.client.requests", unit="{request}")
        self.retries = meter.create_counter("aiobatch.client.retries", unit="{retry}")
        self.limited = meter.create_counter("aiobatch.client.rate_limited", unit="{response}")
        self.pages = meter.create_counter("aiobatch.pages", unit="{page}")
        self.items = meter.create_counter("aiobatch.items", unit="{item}")
        self.bytes = meter.create_counter("aiobatch.bytes", unit="By")
        self.failed = meter.create_counter("aiobatch.results.failed", unit="{result}")

    def __call__(self, event: Event) -> None:
        if isinstance(event, RequestEvent):
            self.on_request(event)
        elif isinstance(event, ResponseEvent):
            self.on_response(event)
        elif isinstance(event, ScanEvent):
            self.on_scan(event)
        elif isinstance(event, ResultEvent):
            self.on_result(event)
        elif isinstance(event, WaitEvent):
            self.on_wait(event)
        elif isinstance(event, RetryEvent):
            self.retries.add(1, {"error.type": event.cause})
        elif isinstance(event, RateLimitedEvent):
            self.limited.add(1, {"url.template": event.path})

    def _parent(self, run: int | None) -> otel_context.Context | None:
        span = self.runs.get(run) if run is not None else None
        return trace.set_span_in_context(span) if span is not None else None

    # --- HTTP attempts ---

    def on_request(self, event: RequestEvent) -> None:
        attrs = {"http.request.method": event.method, "url.template": event.path, **self.server}
        if event.attempt > 1:
            attrs["http.request.resend_count"] = event.attempt - 1
        span = self.tracer.start_span(
            f"{event.method} {event.path}",
            context=self._parent(current_run()),
            kind=SpanKind.CLIENT,
            attributes=attrs,
        )
        self.requests[event] = span
        self.active.add(1, {"http.request.method": event.method, **self.server})

    def on_response(self, event: ResponseEvent) -> None:
        request = event.request
        attrs: dict[str, Any] = {
            "http.request.method": request.method,
            "url.template": request.path,
            **self.server,
        }
        error = event.error
        if event.status is not None:
            attrs["http.response.status_code"] = event.status
            if event.status >= 400:
                error = str(event.status)
        if error is not None:
            attrs["error.type"] = error
        self.active.add(-1, {"http.request.method": request.method, **self.server})
        self.duration.record(event.duration, attrs)
        self.count_requests.add(1, attrs)
        span = self.requests.pop(request, None)
        if span is None:
            return
        if event.status is not None:
            span.set_attribute("http.response.status_code", event.status)
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    # --- runs ---

    def on_scan(self, event: ScanEvent) -> None:
        if event.phase == "started":
            self._start_run(event.run, f"aiobatch {event.kind}", event.parent, event.path)
            return
        kind: dict[str, str] = {"aiobatch.run.kind": event.kind}
        if event.phase == "page":
            self.pages.add(1, kind)
        if event.kind != "results":  # a results stream counts its results one by one
            self._count_items(event.run, event.progress, kind)
        if event.phase in ("finished", "failed", "stopped"):
            self._end_run(event.run, event.phase, event.error, event.progress)

    def _count_items(self, run: int, progress: Any, kind: dict[str, str]) -> None:
        # Items the consumer has taken since the last event of this run.
        total = getattr(progress, "items", None)
        if total is None:
            return
        before = self.delivered.get(run, 0)
        if total > before:
            self.items.add(total - before, kind)
            self.delivered[run] = total

    def on_result(self, event: ResultEvent) -> None:
        kind = {"aiobatch.run.kind": "results"}
        self.items.add(1, kind)
        if event.ok:
            self.bytes.add(event.bytes, kind)
        else:
            self.failed.add(1, {"aiobatch.error_kind": event.error or "unknown"})

    def on_wait(self, event: WaitEvent) -> None:
        if event.phase == "started":
            self._start_run(event.run, "aiobatch wait", event.parent, None, noun=event.noun)
            return
        span = self.runs.get(event.run)
        if span is None:
            return
        if event.status is not None:
            span.add_event("status", {"aiobatch.status": event.status})
        if event.phase == "status" and not event.final:
            return
        phase = "finished" if event.phase == "status" else event.phase
        span.set_attribute("aiobatch.polls", event.polls)
        self._end_run(event.run, phase, event.error, None)

    def _start_run(
        self, run: int, name: str, parent: int | None, path: str | None, noun: str | None = None
    ) -> None:
        attrs: dict[str, Any] = {}
        if path:
            attrs["url.template"] = path
        if noun:
            attrs["aiobatch.noun"] = noun
        self.runs[run] = self.tracer.start_span(
            name, context=self._parent(parent), attributes=attrs
        )

    def _end_run(self, run: int, phase: str, error: str | None, progress: Any) -> None:
        self.delivered.pop(run, None)
        span = self.runs.pop(run, None)
        if span is None:
            return
        span.set_attribute("aiobatch.outcome", phase)
        for name in ("items", "pages", "failed", "bytes"):
            value = getattr(progress, name, None)
            if isinstance(value, int):
                span.set_attribute(f"aiobatch.{name}", value)
        if phase in ("failed", "timed_out"):
            span.set_attribute("error.type", error or phase)
            span.set_status(Status(StatusCode.ERROR))
        span.end()

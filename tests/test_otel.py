"""``aiobatch.otel.instrument`` with the real OpenTelemetry SDK and its in-memory
exporters, against the simulator with injected 429s and 500s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aiobatch import BatchClient, RetryPolicy
from aiobatch.otel import instrument
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

JOB = SimJob(job_id="bjb-otel-1", total_items=300, seed=9)
ITEMS = "GET /api/v1/beta/batch-processing/{id}/items"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    faults = Faults(
        rate_limit=Trigger(first=2),
        retry_after="0",
        server_error=Trigger(first=1),
        error_status=500,
    )
    async with Simulator(jobs=[JOB], faults=faults) as s:
        yield s


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        out: dict[str, list[Any]] = {}
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out[metric.name] = list(metric.data.data_points)
        return out

    def total(self, name: str, **where: Any) -> float:
        points = self.metrics().get(name, [])
        return float(
            sum(p.value for p in points if all(p.attributes.get(k) == v for k, v in where.items()))
        )


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


def client(sim: Simulator, policy: RetryPolicy, otel: Otel) -> BatchClient:
    c = BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy)
    instrument(c, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    return c


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_scan_with_429s_and_500s(sim: Simulator, policy: RetryPolicy, otel: Otel) -> None:
    async with client(sim, policy, otel) as c:
        items = [i async for i in c.job_items.iter("bjb-otel-1", page_size=100, concurrency=1)]
    assert len(items) == 300
    spans = otel.spans.get_finished_spans()
    (scan,) = by_name(spans, "aiobatch scan")
    requests = by_name(spans, ITEMS)
    # Every attempt the server saw is one span: 2 answers of 429 and one of 500
    # (retried), then the pages (the last proves the end).
    assert len(requests) == sim.stats.requests
    assert sim.stats.by_status() == {429: 2, 500: 1, 200: len(requests) - 3}
    assert all(r.kind is SpanKind.CLIENT for r in requests)
    assert all(r.parent is not None for r in requests)
    assert {r.parent.span_id for r in requests if r.parent} == {scan.context.span_id}
    statuses = [attrs(r)["http.response.status_code"] for r in requests]
    assert statuses.count(429) == 2
    assert statuses.count(500) == 1
    failed = [r for r in requests if attrs(r)["http.response.status_code"] != 200]
    assert {attrs(r)["error.type"] for r in failed} == {"429", "500"}
    assert all(r.status.status_code is StatusCode.ERROR for r in failed)
    resent = sorted(attrs(r).get("http.request.resend_count", 0) for r in requests)
    assert resent[-3:] == [1, 2, 3]
    assert resent.count(0) == len(requests) - 3
    for r in requests:
        assert attrs(r)["url.template"] == "/api/v1/beta/batch-processing/{id}/items"
        assert attrs(r)["http.request.method"] == "GET"
        assert attrs(r)["server.address"] == "127.0.0.1"
        # No id, key or query anywhere in a span.
        assert "bjb-otel-1" not in repr(attrs(r))
        assert str(sim.api_key) not in repr(attrs(r))
    assert attrs(scan)["aiobatch.outcome"] == "finished"
    assert attrs(scan)["aiobatch.items"] == 300
    assert attrs(scan)["aiobatch.pages"] == 3
    # Metrics: the same story in counts.
    assert otel.total("aiobatch.client.requests") == len(requests)
    assert otel.total("aiobatch.client.retries") == 3
    assert otel.total("aiobatch.client.retries", **{"error.type": "RateLimitError"}) == 2
    assert otel.total("aiobatch.client.rate_limited") == 2
    assert otel.total("aiobatch.pages") == 3
    assert otel.total("aiobatch.items", **{"aiobatch.run.kind": "scan"}) == 300
    assert otel.total("http.client.active_requests") == 0
    (duration,) = otel.metrics()["http.client.request.duration"][:1]
    assert sum(p.count for p in otel.metrics()["http.client.request.duration"]) == len(requests)
    assert duration.sum >= 0


async def test_results_stream_nests_its_scan_and_counts_failures(
    sim: Simulator, policy: RetryPolicy, otel: Otel
) -> None:
    sim.faults = Faults()
    async with client(sim, policy, otel) as c:
        got = [r async for r in c.job_items.iter_results("bjb-otel-1", concurrency=4)]
    spans = otel.spans.get_finished_spans()
    (stream,) = by_name(spans, "aiobatch results")
    (scan,) = by_name(spans, "aiobatch scan")
    assert scan.parent is not None
    assert scan.parent.span_id == stream.context.span_id
    fetches = [s for s in spans if s.name.startswith("GET /api/v1/parsing")]
    assert fetches
    assert {s.parent.span_id for s in fetches if s.parent} == {stream.context.span_id}
    failed = [r for r in got if not r.ok]
    assert otel.total("aiobatch.results.failed") == len(failed) > 0
    assert otel.total("aiobatch.items", **{"aiobatch.run.kind": "results"}) == len(got)
    assert otel.total("aiobatch.bytes") == sum(r.nbytes for r in got)
    assert attrs(stream)["aiobatch.failed"] == len(failed)


async def test_a_wait_is_a_span_over_its_polls(
    sim: Simulator, policy: RetryPolicy, otel: Otel
) -> None:
    sim.faults = Faults()
    tracer = otel.tracer_provider.get_tracer("app")
    async with client(sim, policy, otel) as c:
        with tracer.start_as_current_span("handler"):
            await c.jobs.wait("bjb-otel-1")
    spans = otel.spans.get_finished_spans()
    (handler,) = by_name(spans, "handler")
    (wait,) = by_name(spans, "aiobatch wait")
    (poll,) = by_name(spans, "GET /api/v1/beta/batch-processing/{id}")
    assert wait.parent is not None
    assert wait.parent.span_id == handler.context.span_id
    assert poll.parent is not None
    assert poll.parent.span_id == wait.context.span_id
    assert attrs(wait)["aiobatch.outcome"] == "finished"


def test_instrument_twice_adds_nothing(sim: Simulator, otel: Otel) -> None:
    c = BatchClient(api_key=sim.api_key, base_url=sim.base_url)
    instrument(c, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    instrument(c, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    assert len(c._hooks.request) == 1


async def test_a_scan_left_early_ends_every_request_span(
    sim: Simulator, policy: RetryPolicy, otel: Otel
) -> None:
    # Slow pages, many in flight: breaking out cancels requests mid-way.
    sim.faults = Faults(latency_ms=30)
    async with client(sim, policy, otel) as c:
        scan = c.job_items.iter("bjb-otel-1", page_size=10, concurrency=8)
        async for _ in scan:
            break
        await scan.aclose()
    spans = otel.spans.get_finished_spans()
    requests = by_name(spans, ITEMS)
    cancelled = [r for r in requests if attrs(r).get("error.type") == "CancelledError"]
    assert cancelled  # attempts the scan no longer needed
    assert otel.total("http.client.active_requests") == 0
    assert otel.total("aiobatch.client.requests") == len(requests)
    (scan_span,) = by_name(spans, "aiobatch scan")
    assert attrs(scan_span)["aiobatch.outcome"] == "stopped"
    assert attrs(scan_span)["aiobatch.items"] == 1


async def test_retry_failed_is_a_span_over_its_scan(
    sim: Simulator, policy: RetryPolicy, otel: Otel
) -> None:
    sim.faults = Faults()
    async with client(sim, policy, otel) as c:
        await c.jobs.retry_failed("bjb-otel-1", dry_run=True)
    spans = otel.spans.get_finished_spans()
    (run,) = by_name(spans, "aiobatch retry_failed")
    scans = by_name(spans, "aiobatch scan")
    assert scans
    assert {s.parent.span_id for s in scans if s.parent} == {run.context.span_id}
    assert all(s.parent is not None for s in scans)
    assert attrs(run)["aiobatch.outcome"] == "finished"


async def test_a_watch_left_early_ends_its_wait_span(otel: Otel) -> None:
    moving = SimJob(job_id="bjb-otel-run", total_items=50, running=True, rate=0.001)
    policy = RetryPolicy(sleep=_no_sleep, random=lambda: 0.0)
    async with Simulator(jobs=[moving]) as sim, client(sim, policy, otel) as c:
        async for _ in c.jobs.watch("bjb-otel-run", poll_interval=1):
            break
        await anyio.lowlevel.checkpoint()  # the dropped watch tells its hooks in its group
        with anyio.CancelScope() as scope:
            await c.jobs.wait("bjb-otel-run", poll_interval=1, on_progress=lambda _: scope.cancel())
    waits = by_name(otel.spans.get_finished_spans(), "aiobatch wait")
    assert [attrs(w)["aiobatch.outcome"] for w in waits] == ["stopped", "stopped"]
    assert all(w.status.status_code is StatusCode.UNSET for w in waits)
    assert otel.total("http.client.active_requests") == 0


async def _no_sleep(delay: float) -> None:
    pass


async def test_stats_are_the_metrics_counts(
    sim: Simulator, policy: RetryPolicy, otel: Otel
) -> None:
    async with client(sim, policy, otel) as c:
        # A scan through 429s and 500s, a results stream, and a scan left early.
        assert len([i async for i in c.job_items.iter("bjb-otel-1", page_size=100)]) == 300
        sim.faults = Faults()
        got = [r async for r in c.job_items.iter_results("bjb-otel-1", concurrency=4)]
        scan = c.job_items.iter("bjb-otel-1", page_size=50)
        async for _ in scan:
            break
        await scan.aclose()
    stats = c.stats()
    failed: dict[str, int] = {}
    for r in got:
        if r.error is not None:
            failed[r.error.kind] = failed.get(r.error.kind, 0) + 1
    assert stats.requests == otel.total("aiobatch.client.requests")
    assert stats.retries == otel.total("aiobatch.client.retries") == 3
    assert stats.rate_limited == otel.total("aiobatch.client.rate_limited") == 2
    assert stats.in_flight == otel.total("http.client.active_requests") == 0
    assert sum(stats.responses.values()) + sum(stats.errors.values()) == stats.requests
    assert stats.pages == otel.total("aiobatch.pages")
    # Items of listing scans: 300, the results stream's own scan, 1 taken.
    listed = otel.total("aiobatch.items", **{"aiobatch.run.kind": "scan"})
    assert stats.items == listed == 300 + got[-1].next_offset + 1
    assert stats.results == otel.total("aiobatch.items", **{"aiobatch.run.kind": "results"})
    assert stats.results == len(got)
    assert stats.bytes_delivered == otel.total("aiobatch.bytes") == sum(r.nbytes for r in got)
    assert stats.results_failed == failed
    for kind, n in failed.items():
        assert otel.total("aiobatch.results.failed", **{"aiobatch.error_kind": kind}) == n


async def test_runs_dropped_after_the_client_closed_still_end(otel: Otel) -> None:
    moving = SimJob(job_id="bjb-otel-run", total_items=500, running=True, rate=0.001)
    policy = RetryPolicy(sleep=_no_sleep, random=lambda: 0.0)
    async with Simulator(jobs=[moving, JOB]) as sim:
        async with client(sim, policy, otel) as c:
            # Held by name past the client's end: dropped when the client can
            # no longer run a task for their hooks.
            scan = c.job_items.iter("bjb-otel-1", page_size=10)
            async for _ in scan:
                break
            watch = c.jobs.watch("bjb-otel-run", poll_interval=1)
            async for _ in watch:
                break
        del scan, watch
    spans = otel.spans.get_finished_spans()
    outcomes = {
        s.name: attrs(s)["aiobatch.outcome"] for s in spans if s.name.startswith("aiobatch")
    }
    assert outcomes == {"aiobatch scan": "stopped", "aiobatch wait": "stopped"}

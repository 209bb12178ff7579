"""No key, header value or unescaped server text in any event, span or metric,
against a small hostile server (written apart from the simulator) that echoes
the caller's key everywhere it can: request ids, error bodies, a job status,
item names, a ``Retry-After``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import serve
from aiohttp import web
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aiobatch import BatchClient, RetryPolicy
from aiobatch.events import Event, ResponseEvent, WaitEvent
from aiobatch.otel import instrument

KEY = "llx-Echoed0Key0Of0The0Caller"
JOB = "bjb-hostile"
EVIL = f"{KEY}\x1b[2J\r\n=cmd|' /C calc'!A0"
BASE = f"/api/v1/beta/batch-processing/{JOB}"


class Hostile:
    """Answers each route first with a 500 and a 429, echoing the key, then
    with bodies and headers full of it."""

    def __init__(self) -> None:
        self.asked: dict[str, int] = {}

    def _headers(self) -> dict[str, str]:
        return {"x-request-id": KEY, "request-id": KEY, "Content-Type": "application/json"}

    def _fault(self, route: str) -> web.Response | None:
        n = self.asked[route] = self.asked.get(route, 0) + 1
        if n == 1:
            body = json.dumps({"detail": EVIL})
            return web.Response(status=500, text=body, headers=self._headers())
        if n == 2:
            headers = {**self._headers(), "Retry-After": "0", "retry-after-ms": KEY}
            return web.Response(status=429, text=json.dumps({"detail": EVIL}), headers=headers)
        return None

    async def job(self, request: web.Request) -> web.Response:
        fault = self._fault("job")
        if fault is not None:
            return fault
        # A status the client does not know (so not terminal), then the end.
        status = EVIL if self.asked["job"] == 3 else "completed"
        job = {"id": JOB, "job_type": "parse", "project_id": "p", "status": status}
        body = {"job": {**job, "total_items": 3}, "progress_percentage": 5}
        return web.Response(text=json.dumps(body), headers=self._headers())

    async def items(self, request: web.Request) -> web.Response:
        fault = self._fault("items")
        if fault is not None:
            return fault
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        page = [
            {"item_id": f"{KEY}-{i}", "item_name": EVIL, "status": "failed", "error_message": EVIL}
            for i in range(offset, min(offset + limit, 3))
        ]
        body = {"items": page, "total_size": 3}
        return web.Response(text=json.dumps(body), headers=self._headers())

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(BASE, self.job)
        app.router.add_get(f"{BASE}/items", self.items)
        return app


class Exported:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def text(self) -> str:
        """Every span's name, attributes and events, and every metric point's attributes."""
        parts: list[Any] = []
        for span in self.spans.get_finished_spans():
            parts += [span.name, dict(span.attributes or {})]
            parts += [(e.name, dict(e.attributes or {})) for e in span.events]
        data = self.reader.get_metrics_data()
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    parts += [dict(p.attributes or {}) for p in metric.data.data_points]
        return repr(parts)


@pytest.fixture
def exported() -> Iterator[Exported]:
    e = Exported()
    yield e
    e.tracer_provider.shutdown()
    e.meter_provider.shutdown()


async def no_sleep(delay: float) -> None:
    pass


async def test_nothing_the_server_echoes_reaches_events_or_telemetry(exported: Exported) -> None:
    seen: list[Event] = []
    hooks = {name: [seen.append] for name in ("request", "response", "retry", "rate_limited")}
    hooks |= {"scan": [seen.append], "result": [seen.append], "wait": [seen.append]}
    server = Hostile()
    policy = RetryPolicy(sleep=no_sleep, monotonic=lambda: 0.0, random=lambda: 0.0)
    async with serve(server.app()) as url:
        client = BatchClient(KEY, base_url=url, retry=policy, event_hooks=hooks)
        instrument(
            client,
            tracer_provider=exported.tracer_provider,
            meter_provider=exported.meter_provider,
        )
        async with client as c:
            final = await c.jobs.wait(JOB, poll_interval=1)
            items = [i async for i in c.job_items.iter(JOB, page_size=10)]
    # The server did its worst: the key came back in bodies the client kept.
    assert str(final.job.status) == "completed"
    assert items[0].item_name == EVIL
    responses = [e for e in seen if isinstance(e, ResponseEvent)]
    assert {e.status for e in responses} >= {500, 429, 200}
    assert {e.request_id for e in responses} == {None}  # the key is no request id
    statuses = [e.status for e in seen if isinstance(e, WaitEvent)]
    assert statuses == [None, "unknown", "completed"]  # an unknown status is not quoted
    everything = repr(seen) + exported.text()
    for secret in (KEY, "Echoed0Key", "\x1b", "\\x1b", "calc", JOB):
        assert secret not in everything
    assert "aiobatch wait" in everything  # the spans were there to look at

"""Webhooks: a non-2xx answer is redelivered (with the attempt count), and a
webhook configuration naming an unknown event is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from test_sim_batches import http
from test_sim_webhooks import create, make_sim, serve_hook

from aiobatch import webhooks
from aiobatch.testing import Faults


class Flaky:
    """Answers ``fail`` times 500, then 204."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.seen: list[str | None] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        event = webhooks.parse(await request.read())
        self.seen.append(event.event_id)
        if len(self.seen) <= self.fail:
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.fixture
async def twice() -> AsyncIterator[Flaky]:
    rec = Flaky(fail=2)
    async with serve_hook(rec.handle) as rec.url:
        yield rec


@pytest.fixture
async def never() -> AsyncIterator[Flaky]:
    rec = Flaky(fail=10**6)
    async with serve_hook(rec.handle) as rec.url:
        yield rec


async def test_a_non_2xx_answer_is_redelivered(twice: Flaky) -> None:
    sim = await make_sim()
    try:
        await create(sim, {"webhook_url": twice.url, "webhook_events": ["batch.pending"]})
        got = await sim.wait_for_webhooks(3)
    finally:
        await sim.stop()
    assert [(d.attempt, d.status) for d in got] == [(1, 500), (2, 500), (3, 204)]
    assert len({d.event_id for d in got}) == 1
    assert len({d.body for d in got}) == 1  # the same event, byte for byte
    assert twice.seen == [got[0].event_id] * 3


async def test_redelivery_stops_after_the_last_attempt(never: Flaky) -> None:
    sim = await make_sim(Faults(webhook_attempts=2))
    try:
        await create(sim, {"webhook_url": never.url, "webhook_events": ["batch.pending"]})
        got = await sim.wait_for_webhooks(2)
        sim.advance(1.0)  # the next event (running) is not asked for: nothing more
    finally:
        await sim.stop()
    assert [(d.attempt, d.status) for d in got] == [(1, 500), (2, 500)]
    assert len(sim.webhook_deliveries) == 2


async def test_unknown_event_names_are_refused() -> None:
    sim = await make_sim()
    try:
        body = {
            "config": {"job": {"type": "parse_v2", "configuration_id": "cfg-1"}},
            "source_directory_id": "dir-1",
            "webhook_configurations": [
                {"webhook_url": "http://127.0.0.1:9/h", "webhook_events": ["batch.done"]}
            ],
        }
        reply = await http(sim, "POST", body=body)
    finally:
        await sim.stop()
    assert reply.status == 422
    (error,) = reply.json()["detail"]
    assert error["loc"] == ["body", "webhook_configurations", 0, "webhook_events", 0]
    assert error["input"] == "batch.done"
    assert "batch.success" in error["msg"]


def test_webhook_attempts_is_checked() -> None:
    with pytest.raises(ValueError, match="webhook_attempts"):
        Faults(webhook_attempts=0)

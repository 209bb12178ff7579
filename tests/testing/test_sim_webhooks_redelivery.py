"""Webhooks: a non-2xx answer is redelivered (with the attempt count), and a
webhook configuration naming an unknown event is refused."""

from __future__ import annotations

import asyncio
import contextlib
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


@contextlib.asynccontextmanager
async def dropping(drops: int) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A raw receiver that reads each POST and hangs up without an answer
    ``drops`` times, then answers 204; yields its URL and the requests read."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        seen.append(await reader.readexactly(length))
        if len(seen) > drops:
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_a_dropped_connection_is_redelivered() -> None:
    async with dropping(drops=1) as (url, seen):
        sim = await make_sim()
        try:
            await create(sim, {"webhook_url": url, "webhook_events": ["batch.pending"]})
            got = await sim.wait_for_webhooks(2)
        finally:
            await sim.stop()
    first, second = got
    assert (first.attempt, first.status) == (1, None)
    assert first.error is not None
    assert "Disconnected" in first.error
    assert (second.attempt, second.status, second.error) == (2, 204, None)
    assert first.body == second.body == seen[0] == seen[1]


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


def test_the_simulator_cli_sets_webhook_attempts() -> None:
    from aiobatch.testing._cli import build_parser, faults_from_args

    ns = build_parser().parse_args(["--webhook-attempts", "5"])
    assert faults_from_args(ns).webhook_attempts == 5
    assert faults_from_args(build_parser().parse_args([])).webhook_attempts == 3
    with pytest.raises(ValueError, match="webhook_attempts"):
        faults_from_args(build_parser().parse_args(["--webhook-attempts", "0"]))

"""The simulator's signed webhook deliveries for v2 batches, received by a real
loopback aiohttp.web server that verifies and parses them with aiobatch.webhooks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from test_sim_batches import T0, http

from aiobatch import webhooks
from aiobatch.testing import Faults, SimClock, Simulator

SECRET = "whsec-sim-test"
ALL = {"batch.pending", "batch.running", "batch.success"}


@dataclass
class Receiver:
    url: str = ""
    secret: str = SECRET
    events: list[webhooks.WebhookEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.headers.append(dict(request.headers))
        try:
            webhooks.verify(body, request.headers.get(webhooks.SIGNATURE_HEADER), self.secret)
            self.events.append(webhooks.parse(body))
        except webhooks.WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return web.Response(status=401)
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def serve_hook(
    handle: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """A loopback receiver answering POST /hook with ``handle``; yields its URL."""
    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with serve_hook(rec.handle) as rec.url:
        yield rec


def facts(sim: Simulator, rec: Receiver) -> list[tuple[str, str]]:
    """What each received event was, from the simulator's record of what it sent:
    the body's shape is drawn, so the parsed event may not say."""
    sent = {d.body: (d.batch_id, d.event_type) for d in sim.webhook_deliveries}
    return [sent[e.body] for e in rec.events]


def kinds(sim: Simulator, rec: Receiver) -> list[str]:
    return [kind for _, kind in facts(sim, rec)]


async def make_sim(faults: Faults | None = None) -> Simulator:
    return await Simulator(clock=SimClock.frozen_at(T0), faults=faults).start()


async def create(sim: Simulator, *hooks: dict[str, Any]) -> str:
    body = {
        "config": {"job": {"type": "parse_v2", "configuration_id": "cfg-1"}},
        "source_directory_id": "dir-1",
        "webhook_configurations": list(hooks),
    }
    reply = await http(sim, "POST", body=body)
    assert reply.status == 200, reply.body
    batch_id = reply.json()["id"]
    assert isinstance(batch_id, str)
    return batch_id


async def test_every_event_of_a_batch_arrives_signed_and_parses(receiver: Receiver) -> None:
    sim = await make_sim()
    try:
        hook = {"webhook_url": receiver.url, "webhook_signing_secret": SECRET}
        batch_id = await create(sim, hook)
        await sim.wait_for_webhooks(1)
        assert kinds(sim, receiver) == ["batch.pending"]
        sim.advance(1.0)  # running
        await sim.wait_for_webhooks(2)
        sim.advance(60.0)  # finished
        await sim.wait_for_webhooks(3)
    finally:
        await sim.stop()
    assert kinds(sim, receiver) == ["batch.pending", "batch.running", "batch.success"]
    assert {b for b, _ in facts(sim, receiver)} == {batch_id}
    assert b"COMPLETED" in receiver.events[-1].body  # whatever the shape
    assert len({d.event_id for d in sim.webhook_deliveries}) == 3
    assert receiver.rejected == []
    assert [d.status for d in sim.webhook_deliveries] == [204, 204, 204]
    # The record holds exactly what was sent, and it verifies.
    for d in sim.webhook_deliveries:
        webhooks.verify(d.body, d.headers[webhooks.SIGNATURE_HEADER], SECRET)


async def test_shuffled_and_duplicated_deliveries_are_set_equal(receiver: Receiver) -> None:
    sim = await make_sim(Faults(seed=3, webhook_shuffle=True, webhook_duplicate_every=2))
    try:
        hook = {"webhook_url": receiver.url, "webhook_signing_secret": SECRET}
        ids = [await create(sim, hook) for _ in range(4)]
        await sim.wait_for_webhooks(6)  # 4 pending, 2 of them repeated
        sim.advance(60.0)  # every batch runs and finishes in one move: one round of 8
        deliveries = await sim.wait_for_webhooks(18)
    finally:
        await sim.stop()
    assert len(deliveries) == 18
    assert sum(d.duplicate for d in deliveries) == 6
    got = set(facts(sim, receiver))
    assert got == {(b, ev) for b in ids for ev in ALL}
    assert len(receiver.events) == 18
    # The round was shuffled: not in the order the changes happened.
    late = facts(sim, receiver)
    late = [k for k in dict.fromkeys(late) if k[1] != "batch.pending"]
    in_order = [(b, ev) for b in ids for ev in ("batch.running", "batch.success")]
    assert sorted(late) == sorted(in_order)
    assert late != in_order
    # A repeat is the very same delivery.
    for d in deliveries:
        if d.duplicate:
            originals = [o for o in deliveries if o.event_id == d.event_id and not o.duplicate]
            assert originals
            assert originals[0].body == d.body


async def test_wrong_secret_fails_verification(receiver: Receiver) -> None:
    # One POST per event: the receiver's 401s would be redelivered otherwise.
    sim = await make_sim(Faults(webhook_attempts=1))
    try:
        await create(sim, {"webhook_url": receiver.url, "webhook_signing_secret": "other"})
        deliveries = await sim.wait_for_webhooks(1)
        await create(sim, {"webhook_url": receiver.url})  # unsigned
        deliveries = await sim.wait_for_webhooks(2)
    finally:
        await sim.stop()
    assert receiver.events == []
    assert len(receiver.rejected) == 2
    assert "does not match" in receiver.rejected[0]
    assert "missing" in receiver.rejected[1]
    assert [d.status for d in deliveries] == [401, 401]
    assert webhooks.SIGNATURE_HEADER not in deliveries[1].headers


async def test_headers_pass_through(receiver: Receiver) -> None:
    sim = await make_sim()
    try:
        hook = {
            "webhook_url": receiver.url,
            "webhook_signing_secret": SECRET,
            "webhook_output_format": "json",  # a JSON object, whichever shape
            "webhook_headers": {"X-Tenant": "acme", "Authorization": "Bearer t0k"},
        }
        await create(sim, hook)
        await sim.wait_for_webhooks(1)
    finally:
        await sim.stop()
    sent = receiver.headers[0]
    assert sent["X-Tenant"] == "acme"
    assert sent["Authorization"] == "Bearer t0k"
    assert sent["Content-Type"] == "application/json"
    assert sent[webhooks.SIGNATURE_HEADER].startswith("sha256=")


async def test_events_filter_and_cancel(receiver: Receiver) -> None:
    sim = await make_sim()
    try:
        only_end = {
            "webhook_url": receiver.url,
            "webhook_signing_secret": SECRET,
            "webhook_events": ["batch.success", "batch.cancelled"],
        }
        done = await create(sim, only_end)
        cancelled = await create(sim, only_end)
        reply = await http(sim, "POST", f"/{cancelled}/cancel")
        assert reply.status == 200
        await sim.wait_for_webhooks(1)
        sim.advance(60.0)
        await sim.wait_for_webhooks(2)
    finally:
        await sim.stop()
    got = sorted(facts(sim, receiver))
    assert got == sorted([(done, "batch.success"), (cancelled, "batch.cancelled")])
    assert len(sim.webhook_deliveries) == 2


async def test_failed_batch_sends_batch_error_and_failures_are_recorded() -> None:
    sim = await make_sim()
    try:
        # Nobody listens on this loopback port: the delivery fails, and is recorded.
        from aiobatch.testing import SimBatch

        store = sim.batches
        state = store.get(store.add(SimBatch(batch_id="bat-f", status="FAILED")).batch_id)
        assert state is not None
        state.hooks = [
            {"webhook_url": "http://127.0.0.1:9/hook", "webhook_events": ["batch.error"]}
        ]
        sim.advance(60.0)
        (delivery,) = await sim.wait_for_webhooks(1)
    finally:
        await sim.stop()
    assert delivery.event_type == "batch.error"
    assert delivery.status is None
    assert delivery.error
    assert b"bat-f" in delivery.body


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "https://example.com/hook", "ftp://127.0.0.1/x", "not a url"]
)
async def test_non_loopback_urls_are_never_contacted(url: str) -> None:
    sim = await make_sim()
    try:
        batch_id = await create(sim, {"webhook_url": url, "webhook_signing_secret": SECRET})
        (refused,) = await sim.wait_for_webhooks(1)
    finally:
        await sim.stop()
    assert refused.batch_id == batch_id
    assert refused.event_type == "batch.pending"
    assert refused.status is None
    assert refused.error is not None
    assert "loopback" in refused.error


async def test_stop_leaves_no_task_behind(receiver: Receiver) -> None:
    import asyncio

    before = asyncio.all_tasks()
    sim = await make_sim()
    # Signed, so the receiver answers 204: no redelivery still on its way at stop.
    await create(sim, {"webhook_url": receiver.url, "webhook_signing_secret": SECRET})
    await sim.wait_for_webhooks(1)
    await sim.stop()
    await sim.stop()  # idempotent
    assert asyncio.all_tasks() == before


def test_standalone_flags_set_the_webhook_knobs() -> None:
    from aiobatch.testing._cli import build_parser, faults_from_args

    ns = build_parser().parse_args(["--webhook-shuffle", "--webhook-duplicate-every", "3"])
    assert faults_from_args(ns) == Faults(webhook_shuffle=True, webhook_duplicate_every=3)
    with pytest.raises(ValueError, match="webhook_duplicate_every"):
        Faults(webhook_duplicate_every=-1)


async def test_a_restarted_simulator_delivers_again(receiver: Receiver) -> None:
    sim = await make_sim()
    try:
        await create(sim, {"webhook_url": receiver.url, "webhook_signing_secret": SECRET})
        await sim.wait_for_webhooks(1)
        await sim.stop()
        await sim.start()
        sim.advance(1.0)
        await sim.wait_for_webhooks(2)
    finally:
        await sim.stop()
    assert kinds(sim, receiver) == ["batch.pending", "batch.running"]

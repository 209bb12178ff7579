"""The simulator's webhook bodies come in shapes nobody published (issue 22 case 8):
the client verifies every one, keeps its bytes, reads the known facts where a
shape has them in a place it looks, and never fails on one where it does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from test_sim_webhooks import SECRET, create, make_sim, serve_hook

from aiobatch import webhooks
from aiobatch.testing import WEBHOOK_ENVELOPES, Faults, Simulator
from aiobatch.testing._webhook_bodies import JSON_ENVELOPES

#: Shapes that put the event name and batch id where ``webhooks.parse`` looks.
READABLE = {"event_type", "event", "flat", "string"}


@dataclass
class Strict:
    """A receiver as the README writes one: construct_event, then SeenEvents."""

    url: str = ""
    seen: webhooks.SeenEvents = field(default_factory=webhooks.SeenEvents)
    events: list[webhooks.WebhookEvent] = field(default_factory=list)
    firsts: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = webhooks.construct_event(body, request.headers, ["whsec-old", SECRET])
        except webhooks.WebhookVerificationError:
            return web.Response(status=401)
        self.events.append(event)
        self.firsts += self.seen.first_time(event)
        return web.Response(status=204)


@pytest.fixture
async def strict() -> AsyncIterator[Strict]:
    rec = Strict()
    async with serve_hook(rec.handle) as rec.url:
        yield rec


async def _run_one_batch(sim: Simulator, rec: Strict, **hook: str) -> str:
    batch_id = await create(sim, {"webhook_url": rec.url, "webhook_signing_secret": SECRET, **hook})
    await sim.wait_for_webhooks(1)
    sim.advance(1.0)
    await sim.wait_for_webhooks(2)
    sim.advance(60.0)
    return batch_id


@pytest.mark.parametrize("envelope", WEBHOOK_ENVELOPES)
async def test_every_envelope_verifies_and_never_fails(envelope: str, strict: Strict) -> None:
    sim = await make_sim(Faults(webhook_envelope=envelope, webhook_duplicate_every=1))
    try:
        batch_id = await _run_one_batch(sim, strict)
        deliveries = await sim.wait_for_webhooks(6)  # 3 events, each sent twice
    finally:
        await sim.stop()
    assert [d.status for d in deliveries] == [204] * 6
    assert {d.envelope for d in deliveries} == {envelope}
    assert [e.body for e in strict.events] == [d.body for d in deliveries]
    assert strict.firsts == 3  # repeats dropped, with or without an event id in the body
    for event, sent in zip(strict.events, deliveries, strict=True):
        assert batch_id.encode() in event.body
        if envelope in READABLE:
            assert (event.event_type, event.batch_id) == (sent.event_type, batch_id)
        else:
            assert (event.event_type, event.batch_id) == (None, None)
        if envelope == "text":
            assert event.json is None
            assert event.text.startswith(sent.event_type)


async def test_drawn_envelopes_vary_and_follow_the_output_format(strict: Strict) -> None:
    sim = await make_sim(Faults(seed=5))
    try:
        for _ in range(4):
            await create(sim, {"webhook_url": strict.url, "webhook_signing_secret": SECRET})
            await create(
                sim,
                {
                    "webhook_url": strict.url,
                    "webhook_signing_secret": SECRET,
                    "webhook_output_format": "json",
                },
            )
        sim.advance(60.0)
        deliveries = await sim.wait_for_webhooks(24)
    finally:
        await sim.stop()
    assert len(strict.events) == 24  # every shape verified
    by_batch: dict[str, set[str]] = {}
    for d in deliveries:
        by_batch.setdefault(d.batch_id, set()).add(d.envelope)
    shapes = set().union(*by_batch.values())
    assert len(shapes) >= 4  # not one shape the client could be fitted to
    assert shapes - set(JSON_ENVELOPES)  # the "string" default also draws non-objects
    for event in strict.events:
        assert event.body  # kept as received, even when nothing could be read


async def test_json_output_format_draws_only_json_objects(strict: Strict) -> None:
    sim = await make_sim(Faults(seed=11))
    try:
        for _ in range(6):
            await create(
                sim,
                {
                    "webhook_url": strict.url,
                    "webhook_signing_secret": SECRET,
                    "webhook_output_format": "json",
                },
            )
        deliveries = await sim.wait_for_webhooks(6)
    finally:
        await sim.stop()
    assert {d.envelope for d in deliveries} <= set(JSON_ENVELOPES)
    assert all(isinstance(e.json, dict) for e in strict.events)
    assert {d.headers["Content-Type"] for d in deliveries} == {"application/json"}


def test_the_envelope_knob_is_checked_and_on_the_command_line() -> None:
    from aiobatch.testing._cli import build_parser, faults_from_args

    with pytest.raises(ValueError, match="webhook_envelope must be 'drawn' or one of"):
        Faults(webhook_envelope="stripe")
    ns = build_parser().parse_args(["--webhook-envelope", "text"])
    assert faults_from_args(ns).webhook_envelope == "text"
    assert Faults().webhook_envelope == "drawn"

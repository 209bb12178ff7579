"""Every fault knob does what it says (raw aiohttp, so broken framing is seen as sent)."""

from __future__ import annotations

import asyncio
from email.utils import formatdate

import aiohttp
import msgspec
import pytest
from _sim_http import API, call, get, session

from aiobatch import BatchItemListResponse, models
from aiobatch.testing import Faults, SimJob, Simulator, Trigger
from aiobatch.testing._faults import FaultState
from aiobatch.testing.pytest_plugin import SimulatorFactory

JOB = "bjb-test-0001"
ITEMS = f"/{JOB}/items"


class Sleeps:
    """Records what the simulator would sleep, and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def statuses(sim: Simulator, n: int, **params: object) -> list[int]:
    async with session(sim) as s:
        return [(await call(s, "GET", ITEMS, params=params)).status for _ in range(n)]


async def test_latency_and_jitter_are_seeded(batch_simulator_factory: SimulatorFactory) -> None:
    sleeps = Sleeps()
    sim = await batch_simulator_factory(
        faults=Faults(latency_ms=50, jitter_ms=10, seed=3), sleep=sleeps
    )
    await statuses(sim, 5)
    assert len(sleeps.delays) == 5
    assert all(0.050 <= d <= 0.060 for d in sleeps.delays)
    again = FaultState(Faults(latency_ms=50, jitter_ms=10, seed=3))
    assert [again.latency() for _ in range(5)] == sleeps.delays


@pytest.mark.parametrize("retry_after", ["2", formatdate(usegmt=True), "soon", None])
async def test_rate_limit_first_k_with_retry_after(
    batch_simulator: Simulator, retry_after: str | None
) -> None:
    batch_simulator.faults = Faults(
        rate_limit=Trigger(first=2), retry_after=retry_after, retry_after_ms="1500"
    )
    async with session(batch_simulator) as s:
        limited = await call(s, "GET", ITEMS)
        assert limited.status == 429
        assert limited.headers.get("Retry-After") == retry_after
        assert limited.headers["retry-after-ms"] == "1500"
        assert limited.json()["detail"]
        assert [(await call(s, "GET", ITEMS)).status for _ in range(3)] == [429, 200, 200]


async def test_every_nth_request(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(server_error=Trigger(every=3), error_status=502)
    assert await statuses(batch_simulator, 7) == [200, 200, 502, 200, 200, 502, 200]


async def test_burst_after_n_requests(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(server_error=Trigger(after=3, first=2), error_status=504)
    assert await statuses(batch_simulator, 6) == [200, 200, 200, 504, 504, 200]


async def test_page_at_an_offset_fails_twice_then_succeeds(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(rate_limit=Trigger(offsets={100: 2}))
    assert await statuses(batch_simulator, 3, offset=0) == [200, 200, 200]
    assert await statuses(batch_simulator, 3, offset=100) == [429, 429, 200]
    assert batch_simulator.stats.faults() == ["rate_limit", "rate_limit"]


async def test_probability_is_seeded(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(server_error=Trigger(probability=0.3), seed=9)
    first = await statuses(batch_simulator, 40)
    batch_simulator.faults = Faults(server_error=Trigger(probability=0.3), seed=9)
    assert await statuses(batch_simulator, 40) == first
    assert 3 <= first.count(503) <= 25


async def test_more_than_k_in_flight(batch_simulator_factory: SimulatorFactory) -> None:
    gate = asyncio.Event()

    async def hold(delay: float) -> None:
        await gate.wait()

    sim = await batch_simulator_factory(
        faults=Faults(latency_ms=1, rate_limit=Trigger(in_flight_above=3)), sleep=hold
    )
    async with session(sim) as s:
        calls = [asyncio.create_task(call(s, "GET", ITEMS)) for _ in range(6)]
        for _ in range(500):
            if sim.stats.in_flight == 6:
                break
            await asyncio.sleep(0.001)
        gate.set()
        replies = await asyncio.gather(*calls)
    assert sorted(r.status for r in replies) == [200, 200, 200, 429, 429, 429]
    assert sim.stats.peak_in_flight == 6
    assert sim.stats.in_flight == 0


async def test_faults_are_tried_in_order_and_count_what_reaches_them(
    batch_simulator: Simulator,
) -> None:
    batch_simulator.faults = Faults(rate_limit=Trigger(first=2), server_error=Trigger(first=2))
    assert await statuses(batch_simulator, 5) == [429, 429, 503, 503, 200]


async def test_times_caps_and_on_selects_the_endpoint(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(server_error=Trigger(every=1, times=2, on="job"))
    assert await statuses(batch_simulator, 2) == [200, 200]  # items: not targeted
    assert [(await get(batch_simulator, f"/{JOB}")).status for _ in range(3)] == [503, 503, 200]


async def test_error_headers(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(
        server_error=Trigger(first=1), error_status=500, error_retry_after="3", should_retry="false"
    )
    reply = await get(batch_simulator, ITEMS)
    assert reply.status == 500
    assert reply.headers["Retry-After"] == "3"
    assert reply.headers["x-should-retry"] == "false"


async def test_html_with_200(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(html=Trigger(first=1))
    reply = await get(batch_simulator, ITEMS)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.body.startswith(b"<!DOCTYPE html>")


async def test_reset_before_the_response(batch_simulator: Simulator) -> None:
    # aiohttp 3.14 replays an idempotent request once after a disconnect, so it
    # takes two resets in a row for the caller to see one.
    batch_simulator.faults = Faults(reset=Trigger(first=2))
    async with session(batch_simulator, fresh=True) as s:
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(s, "GET", ITEMS)
        assert (await call(s, "GET", ITEMS)).status == 200
    assert [(r.status, r.fault) for r in batch_simulator.stats.log] == [
        (None, "reset"),
        (None, "reset"),
        (200, None),
    ]


@pytest.mark.parametrize("kind", ["reset_mid_body", "truncate", "chunked_cut"])
async def test_body_broken_mid_way(batch_simulator: Simulator, kind: str) -> None:
    batch_simulator.faults = Faults(**{kind: Trigger(first=1)})  # type: ignore[arg-type]
    async with session(batch_simulator, fresh=True) as s:
        with pytest.raises(aiohttp.ClientError):
            await call(s, "GET", ITEMS)
        assert (await call(s, "GET", ITEMS)).status == 200
    assert batch_simulator.stats.faults() == [kind]


async def test_truncate_sends_less_than_content_length(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(truncate=Trigger(first=1), cut_fraction=0.25)
    async with session(batch_simulator, fresh=True) as s, s.get(API + ITEMS) as resp:
        promised = resp.content_length
        assert promised is not None
        with pytest.raises(aiohttp.ClientPayloadError, match="content length"):
            await resp.read()


async def test_chunked_body_missing_its_last_chunk(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(chunked_cut=Trigger(first=1))
    async with session(batch_simulator, fresh=True) as s, s.get(API + ITEMS) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_unframed_body_cut_mid_json(batch_simulator: Simulator) -> None:
    full = (await get(batch_simulator, ITEMS)).body
    batch_simulator.faults = Faults(unframed_cut=Trigger(first=1), cut_fraction=0.5)
    async with session(batch_simulator, fresh=True) as s:
        reply = await call(s, "GET", ITEMS)
    assert reply.status == 200
    assert "Content-Length" not in reply.headers
    assert "Transfer-Encoding" not in reply.headers
    assert reply.body == full[: len(full) // 2]  # EOF looked like a clean end
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(reply.body)


async def test_trickle(batch_simulator_factory: SimulatorFactory) -> None:
    sleeps = Sleeps()
    sim = await batch_simulator_factory(sleep=sleeps)
    full = (await get(sim, ITEMS, limit=20)).body
    sim.faults = Faults(trickle=Trigger(first=1), trickle_bytes_per_sec=2000)
    reply = await get(sim, ITEMS, limit=20)
    assert reply.body == full
    assert len(sleeps.delays) > 3
    assert sum(sleeps.delays) == pytest.approx(len(full) / 2000)


async def test_cap_limit_is_silent(batch_simulator_factory: SimulatorFactory) -> None:
    sim = await batch_simulator_factory([SimJob(job_id=JOB, total_items=5000)])
    sim.faults = Faults(cap_limit=200)
    page = (await get(sim, ITEMS, limit=1000)).json()
    assert len(page["items"]) == 200
    assert page["total_size"] == 5000
    assert set(page) == {"items", "total_size"}


async def test_total_size_omitted_or_wrong(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(omit_total_size=True)
    assert "total_size" not in (await get(batch_simulator, ITEMS)).json()
    batch_simulator.faults = Faults(total_size_factor=2.0)
    assert (await get(batch_simulator, ITEMS)).json()["total_size"] == 500
    batch_simulator.faults = Faults(total_size_delta=-40)
    assert (await get(batch_simulator, ITEMS)).json()["total_size"] == 210


async def test_ignore_offset(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(ignore_offset=True)
    page = (await get(batch_simulator, ITEMS, offset=50, limit=3)).json()
    assert [it["item_id"] for it in page["items"]] == [
        batch_simulator.item_id(JOB, i) for i in range(3)
    ]


async def test_next_page_token(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(next_page_token=True)
    first = (await get(batch_simulator, ITEMS, limit=100)).json()
    assert list(first) == ["items", "next_page_token", "total_size"]
    follow = (
        await get(batch_simulator, ITEMS, limit=100, page_token=first["next_page_token"])
    ).json()
    assert follow["items"][0]["item_id"] == batch_simulator.item_id(JOB, 100)
    last = (await get(batch_simulator, ITEMS, limit=100, offset=200)).json()
    assert "next_page_token" not in last


async def test_extra_fields_everywhere(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(extra_fields=True)
    raw = (await get(batch_simulator, ITEMS, limit=5)).body
    page = msgspec.json.decode(raw)
    assert {"x_sim_page", "x_sim_shard"} <= set(page)
    assert "x_sim_meta" in page["items"][0]
    decoded = models.decode(BatchItemListResponse, raw)  # unknown fields are ignored
    assert len(decoded.items) == 5
    job = (await get(batch_simulator, f"/{JOB}")).json()
    assert "x_sim_eta_seconds" in job
    assert "x_sim_region" in job["job"]


async def test_unknown_status_on_some_items(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(unknown_status_every=10, unknown_status_value="archived")
    raw = (await get(batch_simulator, ITEMS, limit=30)).body
    statuses = [it["status"] for it in msgspec.json.decode(raw)["items"]]
    assert [i for i, s in enumerate(statuses) if s == "archived"] == [0, 10, 20]
    items = models.decode(BatchItemListResponse, raw).items
    assert items[10].status == "archived"
    assert not items[10].status.known


def test_trigger_text_form() -> None:
    trig = Trigger.parse(
        "first=2, every=10,p=0.05,offset=500x2,offset=900,inflight>8,after=1,times=5,on=*"
    )
    assert trig == Trigger(
        probability=0.05,
        every=10,
        first=2,
        offsets={500: 2, 900: 1},
        in_flight_above=8,
        after=1,
        times=5,
        on="*",
    )
    for bad in ("first", "bogus=1", "on=nowhere", "p=2"):
        with pytest.raises(ValueError, match=r"."):
            Trigger.parse(bad)


async def test_replacing_faults_restarts_counters(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(rate_limit=Trigger(first=1))
    assert await statuses(batch_simulator, 2) == [429, 200]
    batch_simulator.faults = Faults(rate_limit=Trigger(first=1))
    assert await statuses(batch_simulator, 2) == [429, 200]
    assert "rate_limit" in batch_simulator.faults.describe()


async def test_stats_log_and_reset(batch_simulator: Simulator) -> None:
    batch_simulator.faults = Faults(rate_limit=Trigger(first=1))
    await statuses(batch_simulator, 2, limit=5, status="failed")
    stats = batch_simulator.stats
    assert stats.requests == 2
    assert stats.in_flight == 0
    assert stats.peak_in_flight == 1
    first, second = stats.log
    assert first.method == "GET"
    assert first.path == API + ITEMS
    assert first.query == {"limit": "5", "status": "failed"}
    assert (first.status, first.fault, second.status, second.fault) == (
        429,
        "rate_limit",
        200,
        None,
    )
    assert first.end is not None
    assert first.start <= first.end <= second.start
    assert stats.by_status() == {429: 1, 200: 1}
    batch_simulator.reset_stats()
    assert batch_simulator.stats.requests == 0
    assert not batch_simulator.stats.log

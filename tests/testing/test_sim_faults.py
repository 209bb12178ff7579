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


# --- hostile paging ----------------------------------------------------------


def ids(page: dict[str, list[dict[str, str]]]) -> list[str]:
    return [it["item_id"] for it in page["items"]]


@pytest.mark.parametrize(
    ("style", "body"),
    [
        ("empty", b'{"items":[],"total_size":250}'),
        ("null", b'{"items":null,"total_size":250}'),
        ("missing", b'{"total_size":250}'),
    ],
)
async def test_empty_page_once_at_an_offset_then_normal(
    batch_simulator: Simulator, style: str, body: bytes
) -> None:
    sim = batch_simulator
    sim.faults = Faults(empty_page=Trigger(offsets={100: 1}), empty_style=style)  # type: ignore[arg-type]
    assert ids((await get(sim, ITEMS, offset=0, limit=50)).json()) == sim.item_ids(JOB)[:50]
    glitch = await get(sim, ITEMS, offset=100, limit=50)
    assert (glitch.status, glitch.body) == (200, body)
    again = (await get(sim, ITEMS, offset=100, limit=50)).json()
    assert ids(again) == sim.item_ids(JOB)[100:150]
    assert again["total_size"] == 250
    assert sim.stats.faults() == ["empty_page"]


async def test_empty_page_keeps_the_filtered_total_and_the_total_size_knobs(
    batch_simulator: Simulator,
) -> None:
    sim = batch_simulator
    failed = sim.count(JOB, "failed")
    sim.faults = Faults(empty_page=Trigger(first=1))
    page = (await get(sim, ITEMS, status="failed", limit=5)).json()
    assert page == {"items": [], "total_size": failed}
    sim.faults = Faults(empty_page=Trigger(first=1), total_size_delta=7, next_page_token=True)
    assert (await get(sim, ITEMS, limit=5)).json() == {"items": [], "total_size": 257}
    sim.faults = Faults(empty_page=Trigger(first=1), omit_total_size=True, empty_style="missing")
    assert (await get(sim, ITEMS, limit=5)).json() == {}


async def test_page_faults_come_after_errors_and_skip_invalid_requests(
    batch_simulator: Simulator,
) -> None:
    sim = batch_simulator
    sim.faults = Faults(rate_limit=Trigger(first=1), empty_page=Trigger(first=1))
    assert (await get(sim, ITEMS)).status == 429
    assert (await get(sim, ITEMS)).json()["items"] == []
    assert len((await get(sim, ITEMS)).json()["items"]) == 100
    sim.faults = Faults(empty_page=Trigger(first=1))
    assert (await get(sim, ITEMS, limit=5000)).status == 422  # not reached: not counted
    assert (await get(sim, "/bjb-nope/items")).status == 404
    assert (await get(sim, ITEMS, limit=5)).json()["items"] == []
    assert (await get(sim, f"/{JOB}")).status == 200
    assert [r.fault for r in sim.stats.log][-4:] == [None, None, "empty_page", None]


async def test_clamp_offset_serves_the_last_page(batch_simulator: Simulator) -> None:
    sim = batch_simulator
    every = sim.item_ids(JOB)
    assert (await get(sim, ITEMS, offset=750, limit=40)).json()["items"] == []
    sim.faults = Faults(clamp_offset=True)
    for offset in (250, 251, 250 + 500):
        page = (await get(sim, ITEMS, offset=offset, limit=40)).json()
        assert ids(page) == every[-40:]
        assert page["total_size"] == 250
    assert ids((await get(sim, ITEMS, offset=249, limit=40)).json()) == every[249:]
    assert ids((await get(sim, ITEMS, offset=10_000, limit=1000)).json()) == every
    failed = sim.item_ids(JOB, "failed")
    page = (await get(sim, ITEMS, status="failed", offset=len(failed) + 500, limit=3)).json()
    assert ids(page) == failed[-3:]
    assert page["total_size"] == len(failed)


async def test_stale_page_serves_the_previous_page(batch_simulator: Simulator) -> None:
    sim = batch_simulator
    sim.faults = Faults(stale_page=Trigger(first=1))
    first = await get(sim, ITEMS, offset=0, limit=50)  # offset < limit: not reached
    assert ids(first.json()) == sim.item_ids(JOB)[:50]
    stale = await get(sim, ITEMS, offset=50, limit=50)
    assert stale.body == first.body  # items and total_size alike
    assert ids((await get(sim, ITEMS, offset=50, limit=50)).json()) == sim.item_ids(JOB)[50:100]
    assert [r.fault for r in sim.stats.log] == [None, "stale_page", None]


async def test_stale_page_at_an_offset_and_after_cap_limit(batch_simulator: Simulator) -> None:
    sim = batch_simulator
    sim.faults = Faults(stale_page=Trigger(offsets={100: 1}))
    assert ids((await get(sim, ITEMS, offset=100, limit=100)).json()) == sim.item_ids(JOB)[:100]
    assert ids((await get(sim, ITEMS, offset=100, limit=100)).json()) == sim.item_ids(JOB)[100:200]
    sim.faults = Faults(stale_page=Trigger.always(), cap_limit=20)
    assert ids((await get(sim, ITEMS, offset=60, limit=100)).json()) == sim.item_ids(JOB)[40:60]
    assert ids((await get(sim, ITEMS, offset=10, limit=100)).json()) == sim.item_ids(JOB)[10:30]
    failed = sim.item_ids(JOB, "failed")
    page = (await get(sim, ITEMS, status="failed", offset=4, limit=2)).json()
    assert (ids(page), page["total_size"]) == (failed[2:4], len(failed))
    assert [r.fault for r in sim.stats.log][-3:] == ["stale_page", None, "stale_page"]


async def test_unstable_ties_reorder_groups_on_every_request(batch_simulator: Simulator) -> None:
    sim = batch_simulator
    every = sim.item_ids(JOB)
    sim.faults = Faults(unstable_ties=10, seed=5)
    first = (await get(sim, ITEMS, offset=5, limit=10)).json()
    second = (await get(sim, ITEMS, offset=5, limit=10)).json()
    assert ids(first) != ids(second)  # the page cuts groups 0 and 1
    for page in (first, second):
        assert len(page["items"]) == 10
        assert page["total_size"] == 250
        assert len(set(ids(page))) == 10
        assert set(ids(page)) <= set(every[:20])
    aligned = (await get(sim, ITEMS, offset=20, limit=10)).json()
    assert ids(aligned) != every[20:30]
    assert sorted(ids(aligned)) == sorted(every[20:30])  # a whole group: same set
    tail = (await get(sim, ITEMS, offset=245, limit=10)).json()
    assert len(set(ids(tail))) == 5
    assert set(ids(tail)) <= set(every[240:])  # the last group, cut
    # Reproducible: a new Faults value restarts the per-request counter.
    sim.faults = Faults(unstable_ties=10, seed=5)
    assert (await get(sim, ITEMS, offset=5, limit=10)).json() == first
    sim.faults = Faults(unstable_ties=10, seed=6)
    assert (await get(sim, ITEMS, offset=5, limit=10)).json() != first


async def test_unstable_ties_make_an_offset_scan_repeat_and_miss(
    batch_simulator: Simulator,
) -> None:
    sim = batch_simulator
    sim.faults = Faults(unstable_ties=10, seed=1)
    seen: list[str] = []
    async with session(sim) as s:
        for offset in range(0, 250, 7):
            reply = await call(s, "GET", ITEMS, params={"offset": offset, "limit": 7})
            page = reply.json()
            assert page["total_size"] == 250
            assert len(page["items"]) == min(7, 250 - offset)
            seen += ids(page)
    assert len(seen) == 250
    assert len(set(seen)) < 250  # some items came twice...
    assert set(sim.item_ids(JOB)) - set(seen)  # ...and others never
    assert set(seen) <= set(sim.item_ids(JOB))


async def test_unstable_ties_group_the_filtered_listing(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    sim = await batch_simulator_factory([SimJob(job_id=JOB, total_items=100_000, seed=3)])
    sim.faults = Faults(unstable_ties=1000)
    page = (await get(sim, ITEMS, offset=50_500, limit=1000)).json()
    assert len(set(ids(page))) == 1000
    assert set(ids(page)) <= {sim.item_id(JOB, i) for i in range(50_000, 52_000)}
    failed = list(sim.items(JOB, status="failed", offset=0, limit=2000))
    groups = [{it.item_id for it in failed[:1000]}, {it.item_id for it in failed[1000:]}]
    page = (await get(sim, ITEMS, status="failed", offset=900, limit=200)).json()
    assert len(page["items"]) == 200
    assert page["total_size"] == sim.count(JOB, "failed")
    assert {it["status"] for it in page["items"]} == {"failed"}
    assert set(ids(page)[:100]) <= groups[0]  # positions 900..999 of a shuffled group 0
    assert set(ids(page)[100:]) <= groups[1]
    assert len(set(ids(page))) == 200


def test_paging_knobs_are_validated_and_described() -> None:
    with pytest.raises(ValueError, match="unstable_ties"):
        Faults(unstable_ties=-1)
    with pytest.raises(ValueError, match="empty_style"):
        Faults(empty_style="blank")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stale_page"):
        Faults(stale_page=Trigger(first=1, on="job"))
    Faults(empty_page=Trigger(first=1, on="*"))
    described = Faults(
        empty_page=Trigger(first=1), empty_style="null", clamp_offset=True, unstable_ties=5
    ).describe()
    for name in ("empty_page=Trigger(", "empty_style='null'", "clamp_offset=True", "ties=5"):
        assert name in described

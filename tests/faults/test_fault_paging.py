"""Pagination oddities (cases 17-19): a lying ``total_size``, a server that
ignores ``offset``, and items changing status under a status-filtered scan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest
from aiohttp import web

from aiobatch import BatchItem, PaginationError
from aiobatch._paging import DriftError, FilterMode
from aiobatch.testing import Faults, SimClock, SimJob, Simulator

from .fault_support import (
    VirtualClock,
    assert_exact,
    assert_no_secret,
    client,
    ids,
    simulator,
)

JOB = "bjb-faults-paging"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Item statuses by the simulator's status code.
STATUSES = ("pending", "processing", "completed", "failed", "skipped", "cancelled")


# --- 17. total_size too high, too low, missing -------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        Faults(total_size_delta=5000),  # an early empty page, long before the "total"
        Faults(total_size_factor=3.0),
        Faults(total_size_factor=0.5),  # items go on after the "total"
        Faults(total_size_delta=-2999),  # a total of 1
        Faults(omit_total_size=True),
        Faults(total_size_factor=0.5, cap_limit=70),  # and a silent page-size cap
        Faults(total_size_delta=5000, cap_limit=70),
    ],
    ids=["high+5000", "high x3", "low x0.5", "low=1", "missing", "low+cap", "high+cap"],
)
@pytest.mark.parametrize(("page_size", "concurrency"), [(250, 4), (100, 16), (1000, 1)])
async def test_case17_lying_total_size(faults: Faults, page_size: int, concurrency: int) -> None:
    clock = VirtualClock()
    async with (
        simulator([SimJob(job_id=JOB, total_items=3000, seed=5)], faults=faults) as sim,
        client(sim.base_url, clock) as c,
    ):
        # A total too high: every item, then a typed error (issue 20 case 3).
        short = faults.total_size_delta > 0 or faults.total_size_factor > 1
        got = await items_then_shortfall(
            c.job_items.iter(JOB, page_size=page_size, concurrency=concurrency), short=short
        )
        assert_exact(got, sim.item_ids(JOB))
        # No runaway: at most a few requests beyond one per page actually needed
        # (and two confirmations of an empty page that is not at the total).
        needed = -(-3000 // min(page_size, faults.cap_limit or page_size))
        assert sim.stats.requests <= needed + 2 * concurrency + 4 + 2


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001])
async def test_case17_early_empty_page_on_small_jobs(n: int) -> None:
    clock = VirtualClock()
    faults = Faults(total_size_delta=777)
    async with (
        simulator([SimJob(job_id=JOB, total_items=n, seed=5)], faults=faults) as sim,
        client(sim.base_url, clock) as c,
    ):
        got = await items_then_shortfall(
            c.job_items.iter(JOB, page_size=500, concurrency=4), short=True
        )
        assert_exact(got, sim.item_ids(JOB))


async def items_then_shortfall(items: AsyncIterator[BatchItem], *, short: bool) -> list[str]:
    """Every item id; a listing ending short of its total raises once all are in."""
    got: list[str] = []
    error: DriftError | None = None
    with anyio.fail_after(20):  # no infinite loop
        try:
            async for item in items:
                got.append(item.item_id)
        except DriftError as exc:
            error = exc
    assert (error is not None) is short, str(error)
    if error is not None:
        assert "short of its total_size" in str(error)
        assert error.offset == len(got)
    return got


# --- 18. A server that ignores offset -------------------------------------------------------


@pytest.mark.parametrize(("n", "page_size", "concurrency"), [(3000, 250, 4), (3000, 100, 16)])
async def test_case18_server_ignoring_offset_is_detected(
    n: int, page_size: int, concurrency: int
) -> None:
    clock = VirtualClock()
    faults = Faults(ignore_offset=True)
    async with (
        simulator([SimJob(job_id=JOB, total_items=n, seed=5)], faults=faults) as sim,
        client(sim.base_url, clock) as c,
    ):
        got: list[str] = []
        with anyio.fail_after(10), pytest.raises(PaginationError) as info:
            async for item in c.job_items.iter(JOB, page_size=page_size, concurrency=concurrency):
                got.append(item.item_id)
        requests = sim.stats.requests
        truth = sim.item_ids(JOB)
    err = info.value
    assert "ignores `offset`" in str(err)
    assert not isinstance(err, DriftError)  # not a "warn and go on" condition
    # The first page was right; nothing past it was ever delivered, nothing twice.
    assert_exact(got, truth[: err.offset])
    assert err.offset <= page_size
    # detected within the first window, after asking the repeated page twice more
    # (one stale answer must not fail a scan)
    assert requests <= 2 * concurrency + 2 + 2
    assert_no_secret(err)


async def test_case18_ignored_offset_with_on_drift_warn_still_raises() -> None:
    clock = VirtualClock()
    async with (
        simulator([SimJob(job_id=JOB, total_items=3000)], faults=Faults(ignore_offset=True)) as sim,
        client(sim.base_url, clock) as c,
    ):
        with anyio.fail_after(10), pytest.raises(PaginationError, match="ignores `offset`"):
            async for _ in c.job_items.iter(JOB, page_size=250, on_drift="warn"):
                pass


# --- 19. Items change status between pages -------------------------------------------------


class Ticker:
    """Outermost middleware: every item-list request moves the simulator's clock
    ``step`` seconds *before* it is served, and remembers the instant it saw.

    Nothing awaits between the tick and the handler reading the clock, so each
    page is a snapshot of the job at a known instant, whatever the concurrency.
    """

    def __init__(self, clock: SimClock, step: float) -> None:
        self.clock = clock
        self.step = step
        self.served: list[tuple[int, int, float]] = []  # (offset, limit, instant)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.endswith("/items"):
            self.clock.advance(self.step)
            q = request.query
            self.served.append((int(q.get("offset", 0)), int(q.get("limit", 0)), self.clock.now()))
        return await handler(request)

    def snapshot_truth(self, sim: Simulator, job_id: str, status: str) -> list[str]:
        """What a drift-free status filter must yield: each item once, judged by
        its status in the snapshot its (unfiltered) page was served from."""
        state = sim.registry.require(job_id)
        out: list[str] = []
        by_offset: dict[int, tuple[int, float]] = {}
        for offset, limit, at in self.served:
            by_offset[offset] = (limit, at)  # a retried page: the last snapshot counts
        for offset in sorted(by_offset):
            limit, at = by_offset[offset]
            for index, code in state.view(at).page(None, offset, limit):
                if STATUSES[code] == status:
                    out.append(f"itm_{state.key}_{index:07d}")
        return out


def running_job() -> SimJob:
    # 50 items/s with 8 in flight: each tick of 1 s finishes 50 more items.
    return SimJob(job_id=JOB, total_items=3000, seed=9, running=True, rate=50, concurrency=8)


@pytest.mark.parametrize("status", ["completed", "pending", "failed"])
@pytest.mark.parametrize("mode", ["auto", "client"])
async def test_case19_running_job_safe_modes_follow_snapshot_semantics(
    status: str, mode: FilterMode
) -> None:
    vclock = VirtualClock()
    clock = SimClock.frozen_at()
    ticker = Ticker(clock, 1.0)
    async with simulator([running_job()], clock=clock, middlewares=[ticker.middleware]) as sim:
        clock.advance(20.0)  # a third of the way through
        assert sim.job(JOB).job.status == "running"
        async with client(sim.base_url, vclock) as c:
            items = c.job_items.iter(
                JOB, status=status, filter_mode=mode, page_size=100, concurrency=4
            )
            got: list[BatchItem] = [i async for i in items]
            progress = items.progress
            assert progress.filter_mode == "client"
            assert progress.drift == []
            expected = ticker.snapshot_truth(sim, JOB, status)
    assert_exact(ids(got), expected)
    assert all(i.status == status for i in got)
    # The listing really moved under the scan (the test is not vacuous).
    assert ticker.served[-1][2] - ticker.served[0][2] >= 29.0


@pytest.mark.parametrize("status", ["completed", "pending"])
async def test_case19_running_job_server_filter_raises_drift(status: str) -> None:
    vclock = VirtualClock()
    clock = SimClock.frozen_at()
    ticker = Ticker(clock, 2.0)
    async with simulator([running_job()], clock=clock, middlewares=[ticker.middleware]) as sim:
        clock.advance(20.0)
        async with client(sim.base_url, vclock) as c:
            got: list[str] = []
            with pytest.raises(DriftError) as info:
                async for item in c.job_items.iter(
                    JOB, status=status, filter_mode="server", page_size=100, concurrency=4
                ):
                    got.append(item.item_id)
    err = info.value
    assert "the listing changed during the scan" in str(err)
    assert "filter_mode='client'" in str(err)  # the message says what to do
    assert len(got) == len(set(got))  # nothing twice before the error
    assert len(got) == err.offset  # everything before the resume point, no more
    assert all(i.startswith("itm_") for i in got)
    assert_no_secret(err)


async def test_case19_running_job_server_filter_warns_when_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    vclock = VirtualClock()
    clock = SimClock.frozen_at()
    ticker = Ticker(clock, 2.0)
    async with simulator([running_job()], clock=clock, middlewares=[ticker.middleware]) as sim:
        clock.advance(20.0)
        async with client(sim.base_url, vclock) as c:
            items = c.job_items.iter(
                JOB,
                status="completed",
                filter_mode="server",
                on_drift="warn",
                page_size=100,
                concurrency=4,
            )
            with anyio.fail_after(20):
                got = [i async for i in items]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("aiobatch scan drift" in r.getMessage() for r in warnings)
    assert items.progress.drift != []
    assert items.progress.filter_mode == "server"
    assert all(i.status == "completed" for i in got)


async def test_case19_finished_job_auto_mode_uses_the_exact_server_filter() -> None:
    vclock = VirtualClock()
    job = SimJob(job_id=JOB, total_items=3000, seed=9)  # finished
    async with simulator([job]) as sim, client(sim.base_url, vclock) as c:
        items = c.job_items.iter(JOB, status="failed", page_size=100, concurrency=4)
        got = [i.item_id async for i in items]
        assert_exact(got, sim.item_ids(JOB, "failed"))
    assert items.progress.filter_mode == "server"
    assert items.progress.drift == []


@pytest.mark.parametrize("mode", ["auto", "client"])
async def test_case19_safe_mode_resume_offset_stays_exact(mode: FilterMode) -> None:
    """Client mode counts every scanned item: resuming from a page's next_offset
    neither repeats nor skips, even on a running job."""
    vclock = VirtualClock()
    clock = SimClock.frozen_at()
    ticker = Ticker(clock, 2.0)
    async with simulator([running_job()], clock=clock, middlewares=[ticker.middleware]) as sim:
        clock.advance(20.0)
        async with client(sim.base_url, vclock) as c:
            first: list[str] = []
            pages = c.job_items.iter_pages(
                JOB, status="completed", filter_mode=mode, page_size=100, concurrency=4
            )
            async for page in pages:
                first.extend(ids(page.items))
                if page.next_offset >= 1000:
                    resume = page.next_offset
                    break
            await pages.aclose()
            # The documented resume: the offset and the mode the first scan used.
            used = pages.progress.filter_mode
            assert used == "client"
            rest = [
                i.item_id
                async for i in c.job_items.iter(
                    JOB,
                    status="completed",
                    filter_mode=used,
                    page_size=100,
                    concurrency=4,
                    start_offset=resume,
                )
            ]
    assert resume == 1000
    both = first + rest
    assert len(both) == len(set(both))
    indices = [int(i.rsplit("_", 1)[1]) for i in both]
    assert indices == sorted(indices)
    assert max(int(i.rsplit("_", 1)[1]) for i in first) < 1000
    assert min(int(i.rsplit("_", 1)[1]) for i in rest) >= 1000

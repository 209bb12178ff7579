"""``scan``, ``result`` and ``wait`` events against the simulator: each run's
lifecycle, counted from what the consumer received, and ``current_run()`` on
the requests made for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aiobatch import BatchClient, RetryPolicy, ScanProgress
from aiobatch.events import (
    Event,
    RequestEvent,
    ResultEvent,
    RetryEvent,
    ScanEvent,
    WaitEvent,
    current_run,
)
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

JOB = SimJob(job_id="bjb-events", total_items=230, seed=5)
RUNNING = SimJob(job_id="bjb-moving", total_items=50, running=True, rate=0.001)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[JOB, RUNNING]) as s:
        yield s


class Recorder:
    """Every event, and the run each request was made for."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.request_runs: list[int | None] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, RequestEvent):
            self.request_runs.append(current_run())

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def hooks(self) -> dict[str, list[Any]]:
        return {name: [self] for name in ("request", "scan", "result", "wait")}


def client(sim: Simulator, policy: RetryPolicy, rec: Recorder) -> BatchClient:
    return BatchClient(
        api_key=sim.api_key, base_url=sim.base_url, retry=policy, event_hooks=rec.hooks()
    )


async def test_scan_events_follow_what_the_consumer_received(
    sim: Simulator, policy: RetryPolicy
) -> None:
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        items = [i async for i in c.job_items.iter("bjb-events", page_size=50, concurrency=3)]
    scans: list[ScanEvent] = rec.of(ScanEvent)
    assert [e.phase for e in scans] == ["started"] + ["page"] * 5 + ["finished"]
    assert {e.kind for e in scans} == {"scan"}
    assert {e.path for e in scans} == {"/api/v1/beta/batch-processing/{id}/items"}
    assert len({e.run for e in scans}) == 1
    pages = [e for e in scans if e.phase == "page"]
    assert [e.items for e in pages] == [50, 50, 50, 50, 30]
    assert [e.progress.pages for e in pages] == [1, 2, 3, 4, 5]
    end = scans[-1].progress
    assert isinstance(end, ScanProgress)
    assert (end.items, end.next_offset, end.state, end.done) == (230, 230, "finished", True)
    # A snapshot: the first event's copy did not move with the scan.
    assert scans[0].progress.items == 0
    assert len(items) == 230
    # Every page request was made for the scan's run.
    assert rec.request_runs
    assert set(rec.request_runs) == {scans[0].run}


async def test_a_break_is_a_stopped_scan(sim: Simulator, policy: RetryPolicy) -> None:
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        scan = c.job_items.iter("bjb-events", page_size=50)
        async for _ in scan:
            break
        await scan.aclose()
    phases = [e.phase for e in rec.of(ScanEvent)]
    assert phases[0] == "started"
    assert phases[-1] == "stopped"
    assert "finished" not in phases
    stopped = rec.of(ScanEvent)[-1]
    assert stopped.progress.items == 1
    assert stopped.progress.next_offset == 1


async def test_a_failed_scan_names_the_error(sim: Simulator, policy: RetryPolicy) -> None:
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        with contextlib.suppress(Exception):
            async for _ in c.job_items.iter("bjb-nope"):
                pass
    scans = rec.of(ScanEvent)
    assert [e.phase for e in scans] == ["started", "failed"]
    assert scans[-1].error == "NotFoundError"


async def test_result_events_one_per_item_received(sim: Simulator, policy: RetryPolicy) -> None:
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        stream = c.job_items.iter_results("bjb-events", concurrency=4)
        got = [r async for r in stream]
    results: list[ResultEvent] = rec.of(ResultEvent)
    assert len(results) == len(got) > 0
    assert [e.ok for e in results] == [r.ok for r in got]
    assert [e.bytes for e in results] == [r.nbytes for r in got]
    assert [e.position for e in results] == [r.next_offset for r in got]
    assert [e.error for e in results] == [r.error.kind if r.error else None for r in got]
    assert {"failed", "missing"} <= {e.error for e in results}
    scans = rec.of(ScanEvent)
    outer = [e for e in scans if e.kind == "results"]
    inner = [e for e in scans if e.kind == "scan"]
    assert [e.phase for e in outer] == ["started", "finished"]
    assert outer[-1].progress.items == len(got)
    assert {e.run for e in results} == {outer[0].run}
    # The item scan under the stream says whose it is; every request is the
    # stream's (result fetches) or its scan's (pages).
    assert {e.parent for e in inner} == {outer[0].run}
    assert set(rec.request_runs) <= {outer[0].run, inner[0].run}
    assert inner[0].run in rec.request_runs
    assert outer[0].run in rec.request_runs


async def test_wait_events_each_status_change(sim: Simulator, policy: RetryPolicy) -> None:
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        await c.jobs.wait("bjb-events")
    waits: list[WaitEvent] = rec.of(WaitEvent)
    assert [(e.phase, e.noun, e.status, e.final, e.polls) for e in waits] == [
        ("started", "job", None, False, 0),
        ("status", "job", "completed", True, 1),
    ]
    assert rec.request_runs == [waits[0].run]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    async def sleep(self, delay: float) -> None:
        self.now += delay

    def monotonic(self) -> float:
        return self.now


async def test_a_wait_that_times_out_says_so(sim: Simulator) -> None:
    clock = Clock()
    policy = RetryPolicy(sleep=clock.sleep, monotonic=clock.monotonic, random=lambda: 0.0)
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        with pytest.raises(Exception, match="did not end"):
            await c.jobs.wait("bjb-moving", timeout=10, poll_interval=1)
    waits: list[WaitEvent] = rec.of(WaitEvent)
    assert [e.phase for e in waits[:2]] == ["started", "status"]
    assert waits[-1].phase == "timed_out"
    assert waits[-1].error == "JobWaitTimeoutError"
    assert waits[-1].elapsed == pytest.approx(10.0)
    assert waits[-1].polls > 1


async def test_retry_failed_is_one_run_around_its_scan(sim: Simulator, policy: RetryPolicy) -> None:
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        plan = await c.jobs.retry_failed("bjb-events", dry_run=True)
    assert plan.found
    scans = rec.of(ScanEvent)
    runs = [e for e in scans if e.kind == "retry_failed"]
    assert [e.phase for e in runs] == ["started", "finished"]
    inner = [e for e in scans if e.kind == "scan"]
    assert inner
    assert {e.parent for e in inner} == {runs[0].run}


async def test_a_raising_scan_hook_does_not_break_the_scan(
    sim: Simulator, policy: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(event: Event) -> None:
        raise RuntimeError("hook bug")

    async with BatchClient(
        api_key=sim.api_key, base_url=sim.base_url, retry=policy, event_hooks={"scan": [boom]}
    ) as c:
        items = [i async for i in c.job_items.iter("bjb-events", page_size=100)]
    assert len(items) == 230
    assert any("hook" in r.getMessage() for r in caplog.records)


async def test_no_hooks_no_run(sim: Simulator, policy: RetryPolicy) -> None:
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as c:
        pages = c.job_items.iter_pages("bjb-events")
        assert pages._hooks is None
        async for _ in pages:
            pass


async def test_result_events_of_a_v2_batch(policy: RetryPolicy) -> None:
    from aiobatch.testing import SimBatch, SimClock

    t0 = 1_800_000_000.0
    rec = Recorder()
    async with Simulator(clock=SimClock.frozen_at(t0)) as sim:
        sim.batches.add(SimBatch(batch_id="bat-ev", files=30, error_every=7, created_at=t0 - 600))
        async with client(sim, policy, rec) as c:
            got = [r async for r in c.batches.iter_results("bat-ev", concurrency=4)]
    results: list[ResultEvent] = rec.of(ResultEvent)
    assert [(e.ok, e.position, e.error) for e in results] == [
        (r.ok, r.next_offset, r.error.kind if r.error else None) for r in got
    ]
    (started, *_, finished) = [e for e in rec.of(ScanEvent) if e.kind == "results"]
    assert (started.phase, finished.phase) == ("started", "finished")
    assert started.path == "/api/v2/batches/{id}"
    assert finished.progress.items == len(got) == 30


async def test_a_watch_left_with_break_is_stopped(sim: Simulator) -> None:
    clock = Clock()
    policy = RetryPolicy(sleep=clock.sleep, monotonic=clock.monotonic, random=lambda: 0.0)
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        async for _ in c.jobs.watch("bjb-moving", poll_interval=1):
            break
        await anyio.lowlevel.checkpoint()  # the dropped watch tells its hooks in its group
        waits: list[WaitEvent] = rec.of(WaitEvent)
        assert [e.phase for e in waits] == ["started", "status", "stopped"]
        assert waits[-1].status == "running"
        assert not waits[-1].final
        # aclose() on a watch held by name says so at once, and only once.
        watch = c.jobs.watch("bjb-moving", poll_interval=1)
        async for _ in watch:
            break
        await watch.aclose()
        await watch.aclose()
    second = [e for e in rec.of(WaitEvent) if e.run != waits[0].run]
    assert [e.phase for e in second] == ["started", "status", "stopped"]


async def test_a_wait_cancelled_or_broken_by_its_callback_is_stopped(sim: Simulator) -> None:
    clock = Clock()
    policy = RetryPolicy(sleep=clock.sleep, monotonic=clock.monotonic, random=lambda: 0.0)
    rec = Recorder()
    async with client(sim, policy, rec) as c:
        with anyio.CancelScope() as scope:
            await c.jobs.wait("bjb-moving", poll_interval=1, on_progress=lambda _: scope.cancel())

        def broken(_: object) -> None:
            raise RuntimeError("callback bug")

        with pytest.raises(RuntimeError, match="callback bug"):
            await c.jobs.wait("bjb-moving", poll_interval=1, on_progress=broken)
    runs: dict[int, list[str]] = {}
    for e in rec.of(WaitEvent):
        runs.setdefault(e.run, []).append(e.phase)
    assert list(runs.values()) == [["started", "status", "stopped"]] * 2


async def test_retry_events_say_what_was_retried(sim: Simulator, policy: RetryPolicy) -> None:
    sim.faults = Faults(server_error=Trigger(first=1, on="*"))
    got: list[Event] = []
    hooks = {"retry": [got.append]}
    async with BatchClient(
        api_key=sim.api_key, base_url=sim.base_url, retry=policy, event_hooks=hooks
    ) as c:
        await c.jobs.get("bjb-events")
        sim.faults = Faults(server_error=Trigger(first=1, on="items"))
        [i async for i in c.job_items.iter("bjb-events", page_size=100, concurrency=1)]
    retries: list[RetryEvent] = [e for e in got if isinstance(e, RetryEvent)]
    assert [e.operation for e in retries] == [
        "GET /api/v1/beta/batch-processing/{id}",
        "page at offset 0",
    ]

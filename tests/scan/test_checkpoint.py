"""``Checkpoint``: out-of-order acks, resume from ``to_json()``, every item handed
out again unless acknowledged, never one that was; bounded; typed errors."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from aiobatch import BatchClient, Checkpoint, DriftError, RetryPolicy
from aiobatch.testing import SimBatch, SimClock, SimJob, Simulator

JOB, N = "bjb-cp", 2_640
T0 = 1_800_000_000.0
BATCHES = 57


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        jobs=[SimJob(job_id=JOB, total_items=N, seed=3)], clock=SimClock.frozen_at(T0)
    ) as s:
        for i in range(BATCHES):
            s.batches.add(SimBatch(batch_id=f"bat-{i:03d}", created_at=T0 - 10_000 + i, files=2))
        s.batches.add(SimBatch(batch_id="bat-files", files=60, created_at=T0 - 20_000))
        yield s


@pytest.fixture
def client_for(policy: RetryPolicy) -> Callable[[Simulator], BatchClient]:
    def build(s: Simulator) -> BatchClient:
        return BatchClient(api_key=s.api_key, base_url=s.base_url, retry=policy)

    return build


async def all_ids(client: BatchClient) -> list[str]:
    return [i.item_id async for i in client.job_items.iter(JOB, page_size=200)]


async def test_resume_hands_out_again_exactly_what_was_not_acked(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    rng = random.Random(7)
    async with client_for(sim) as client:
        truth = await all_ids(client)
        cp, acked, saved = Checkpoint(), set[str](), ""
        for _ in range(6):  # each round: take some, ack a random part, "crash"
            cp = Checkpoint.from_json(saved) if saved else cp
            taken = []
            async with client.job_items.iter(JOB, page_size=200, checkpoint=cp) as items:
                async for item in items:
                    assert item.item_id not in acked  # never one that was acknowledged
                    taken.append(item)
                    if len(taken) == 700:
                        break
            for item in rng.sample(taken, len(taken) // 2):
                cp.ack(item)
                acked.add(item.item_id)
                saved = cp.to_json()
        rest = [i async for i in client.job_items.iter(JOB, checkpoint=Checkpoint.from_json(saved))]
    assert sorted(acked | {i.item_id for i in rest}) == sorted(truth)
    assert not acked & {i.item_id for i in rest}
    # Server order is kept for what is handed out again.
    assert [i.item_id for i in rest] == [k for k in truth if k not in acked]


async def test_the_saved_state_is_bounded_and_compacts_as_acks_fill_the_gap(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    cp = Checkpoint()
    async with client_for(sim) as client:
        items = [i async for i in client.job_items.iter(JOB, page_size=500, checkpoint=cp)]
    assert cp.pending == N
    for item in items[1:]:  # the first item is still in work
        cp.ack(item)
    state = json.loads(cp.to_json())
    assert state["offset"] == 0
    assert len(state["acked"]) == N - 1
    cp.ack(items[0])  # the gap fills: a bare watermark remains
    state = json.loads(cp.to_json())
    assert (state["offset"], state["acked"], cp.pending) == (N, [], 0)
    assert state["recent"] == [i.item_id for i in items[-128:]]
    assert len(cp.to_json()) < 200 + 128 * 25


async def test_max_pending_makes_the_scan_wait_for_acks(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    cp = Checkpoint(max_pending=300)
    seen: list[str] = []
    async with client_for(sim) as client:
        items = client.job_items.iter(JOB, page_size=100, checkpoint=cp)
        async with items, anyio.create_task_group() as tg:
            queue: asyncio.Queue[object] = asyncio.Queue()

            async def worker() -> None:
                while (item := await queue.get()) is not None:
                    await asyncio.sleep(0)
                    cp.ack(item)

            tg.start_soon(worker)
            async for item in items:
                assert cp.pending < 300 + 100  # the limit, plus the page being handed out
                seen.append(item.item_id)
                queue.put_nowait(item)
            queue.put_nowait(None)
    assert len(seen) == N
    assert cp.pending == 0
    assert json.loads(cp.to_json())["offset"] == N


async def test_cursor_scan_resumes_from_the_token_and_skips_acked(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as client:
        truth = [b.id async for b in client.batches.iter(page_size=10)]
        cp = Checkpoint()
        taken = []
        async for b in client.batches.iter(page_size=10, checkpoint=cp):
            taken.append(b)
            if len(taken) == 25:
                break
        for b in taken[:13] + taken[15:21]:
            cp.ack(b)
        state = json.loads(cp.to_json())
        assert state["kind"] == "cursor"
        assert state["token"] is not None
        saved = cp.to_json()
        cp2 = Checkpoint.from_json(saved)
        rest = [b.id async for b in client.batches.iter(page_size=10, checkpoint=cp2)]
        acked = {b.id for b in taken[:13] + taken[15:21]}
        assert rest == [k for k in truth if k not in acked]
        # The progress of a checkpointed scan still counts the server's page: its
        # resume point (token + skip) is just past the item received.
        async with client.batches.iter(
            page_size=10, checkpoint=Checkpoint.from_json(saved)
        ) as items:
            first = await anext(items)
            p = items.progress
        after = [
            b.id
            async for b in client.batches.iter(
                page_size=10, start_token=p.next_token, start_skip=p.next_skip
            )
        ]
    assert first.id == taken[13].id
    assert after == truth[14:]


async def test_results_streams_take_a_checkpoint(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as client:
        cp, first = Checkpoint(), []
        async with client.job_items.iter_results(JOB, status=None, checkpoint=cp) as results:
            async for r in results:
                first.append(r)
                if len(first) == 40:
                    break
        for r in first[::2]:
            cp.ack(r)
        resumed = Checkpoint.from_json(cp.to_json())
        again = []
        async with client.job_items.iter_results(JOB, status=None, checkpoint=resumed) as results:
            async for r in results:
                again.append(r.item.item_id)
                if len(again) == 25:
                    break
        head = [i.item_id async for i in client.job_items.iter(JOB, max_items=45)]
        assert again == [k for k in head if k not in {r.item.item_id for r in first[::2]}]

        files, fcp = [], Checkpoint()
        async with client.batches.iter_results("bat-files", checkpoint=fcp) as stream:
            async for f in stream:
                files.append(f)
                if len(files) == 20:
                    break
        for f in files[5:]:
            fcp.ack(f)
        later = [
            f.file_id
            async for f in client.batches.iter_results(
                "bat-files", checkpoint=Checkpoint.from_json(fcp.to_json())
            )
        ]
        every = [f.file_id async for f in client.batches.iter_results("bat-files")]
    assert later == [k for k in every if k not in {f.file_id for f in files[5:]}]


async def test_pages_are_acknowledged_whole_and_resume_without_them(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    cp = Checkpoint()
    async with client_for(sim) as client:
        truth = await all_ids(client)
        pages = []
        async for page in client.job_items.iter_pages(JOB, page_size=100, checkpoint=cp):
            pages.append(page)
            if len(pages) == 5:
                break
        for page in (pages[4], pages[1], pages[0]):  # out of order; 2 and 3 still in work
            cp.ack(page)
        cp.ack(pages[0])  # twice: harmless
        assert json.loads(cp.to_json())["offset"] == 200
        resumed = Checkpoint.from_json(cp.to_json())
        rest = []
        async for page in client.job_items.iter_pages(JOB, page_size=100, checkpoint=resumed):
            assert page.positions is None or len(page.positions) == len(page.items)
            rest += [i.item_id for i in page.items]
    assert rest == truth[200:400] + truth[500:]


async def test_one_object_for_two_scans_in_a_row(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    cp = Checkpoint()
    async with client_for(sim) as client:
        truth = await all_ids(client)
        first = client.job_items.iter(JOB, page_size=100, checkpoint=cp)
        taken = [await anext(first) for _ in range(30)]
        for item in taken[::3]:
            cp.ack(item)
        second = client.job_items.iter(JOB, page_size=100, checkpoint=cp)
        with pytest.raises(RuntimeError, match="newer scan"):
            for _ in range(100):  # past the first scan's current page
                await anext(first)
        await first.aclose()
        cp.ack(taken[1])  # a late ack of the first scan's work still counts
        rest = [i.item_id async for i in second]
    done = {i.item_id for i in taken[::3]} | {taken[1].item_id}
    assert rest == [k for k in truth if k not in done]


async def test_bad_use_is_a_clear_error(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    cp = Checkpoint()
    async with client_for(sim) as client:
        async for item in client.job_items.iter(JOB, checkpoint=cp, max_items=3):
            cp.ack(item)
        with pytest.raises(ValueError, match="belongs to the scan of 'job_items/bjb-cp'"):
            client.batches.iter(checkpoint=cp)
        with pytest.raises(TypeError, match="without start_offset"):
            client.job_items.iter(JOB, checkpoint=cp, start_offset=5)
        with pytest.raises(TypeError, match="checkpoint must be a Checkpoint"):
            client.job_items.iter(JOB, checkpoint="{}")  # type: ignore[arg-type]
        other = [i async for i in client.job_items.iter(JOB, max_items=1)]
    with pytest.raises(ValueError, match="not handed out by a scan using this checkpoint"):
        Checkpoint().ack(other[0])
    with pytest.raises(TypeError, match="ack\\(\\) takes"):
        cp.ack("item-1")
    bad_total = '{"version": 1, "total": -1}'
    for bad in ("[]", '{"version": 2}', '{"version": 1, "offset": -1}', bad_total, "{"):
        with pytest.raises(ValueError, match="Checkpoint"):
            Checkpoint.from_json(bad)
    with pytest.raises(ValueError, match="max_pending"):
        Checkpoint(max_pending=0)


async def test_a_resume_told_a_lower_total_than_was_saved_is_drift(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    """The listing lost items at its front since the save: every offset moved
    back, so the watermark would skip as many items; the lower total says so."""
    cp = Checkpoint()
    async with client_for(sim) as client:
        async for item in client.job_items.iter(JOB, page_size=100, checkpoint=cp, max_items=100):
            cp.ack(item)
        state = json.loads(cp.to_json())
        assert (state["offset"], state["total"]) == (100, N)
        state["total"] = N + 5  # as saved before five items left the front
        shrunk = Checkpoint.from_json(json.dumps(state))
        with pytest.raises(DriftError, match=f"total_size fell from {N + 5} .* to {N}"):
            async for _ in client.job_items.iter(JOB, page_size=100, checkpoint=shrunk):
                pass
        rest = [
            i
            async for i in client.job_items.iter(
                JOB, checkpoint=Checkpoint.from_json(json.dumps(dict(state, total=N)))
            )
        ]
    assert len(rest) == N - 100

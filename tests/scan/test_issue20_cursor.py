"""Issue 20, cases 1, 6, 7 and 8: cursor scans as safe as offset scans, against
a hostile cursor server written apart from the simulator (``edge_server``)."""

from __future__ import annotations

import re
import tracemalloc
from typing import Any

import anyio
import pytest
from _servers import unused_port
from edge_server import Clock, CursorServer

from aiobatch import APIConnectionError, BatchClient, PageFetchError, PaginationError


async def batch_ids(c: BatchClient, **kw: Any) -> list[str]:
    return [b.id async for b in c.batches.iter(**kw)]


def ids(n: int) -> list[str]:
    return [f"bat-{i:05d}" for i in range(n)]


# --- case 1: every item a cursor page carries belongs to the listing -------------------


async def test_an_over_delivering_cursor_server_loses_nothing() -> None:
    server = CursorServer(600, per_page=150)
    async with server.run() as url, Clock().client(url) as c:
        got = await batch_ids(c, page_size=100)
    assert got == ids(600)
    assert len(server.requests) == 4


@pytest.mark.parametrize("form", ["pages", "items"])
async def test_max_items_on_an_over_delivering_server_resumes_inside_the_page(form: str) -> None:
    server = CursorServer(600, per_page=150)
    async with server.run() as url, Clock().client(url) as c:
        if form == "items":
            it = c.batches.iter(page_size=100, max_items=120)
            got = [b.id async for b in it]
            progress = it.progress
        else:
            pages = c.batches.iter_pages(page_size=100, max_items=120)
            got = [b.id async for p in pages for b in p.items]
            progress = pages.progress
        assert len(got) == 120
        resume = {"start_token": progress.next_token, "start_skip": progress.next_skip}
        assert resume == {"start_token": None, "start_skip": 120}  # inside the first page
        got += await batch_ids(c, page_size=100, **resume)
    assert got == ids(600)


@pytest.mark.parametrize("stop_after", [1, 149, 150, 151, 420])
async def test_an_item_break_resumes_exactly_after_the_last_item_received(
    stop_after: int,
) -> None:
    server = CursorServer(600, per_page=150)
    async with server.run() as url, Clock().client(url) as c:
        got: list[str] = []
        items = c.batches.iter(page_size=100)
        async with items:
            async for b in items:
                got.append(b.id)
                if len(got) == stop_after:
                    break
        p = items.progress
        got += await batch_ids(c, start_token=p.next_token, start_skip=p.next_skip)
    assert got == ids(600)


# --- case 6: loop detection in bounded memory ------------------------------------------


async def test_huge_tokens_are_remembered_as_digests_and_cut_in_messages() -> None:
    server = CursorServer(80, per_page=1, pad=64 * 1024, repeat_token_at=60)
    async with server.run() as url, Clock().client(url) as c:
        tracemalloc.start(64)
        try:
            with pytest.raises(PaginationError, match="a second time") as info:
                async for b in c.batches.iter():
                    if b.id == "bat-00050":
                        snapshot = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    # What the client holds (allocations made under aiobatch's frames; the
    # server shares the process): 50 tokens of 64 KiB would be 3.2 MiB.
    mine = snapshot.filter_traces([tracemalloc.Filter(True, "*/aiobatch/*", all_frames=True)])
    assert sum(t.size for t in mine.traces) < 1024 * 1024
    assert len(str(info.value)) < 1_000
    assert len(info.value.next_token or "") > 64 * 1024  # the position itself is whole


async def test_changing_tokens_over_repeating_data_is_an_error_not_endless() -> None:
    # 300 distinct batches, served again and again under fresh tokens, beyond a
    # duplicate window of 100 items: only the 1-in-64 sample can see it.
    server = CursorServer(30_000, per_page=100, cycle=300)
    async with server.run() as url, Clock().client(url) as c:
        got: list[str] = []
        with pytest.raises(PaginationError, match="only items delivered before"):
            async for b in c.batches.iter(page_size=100, dedup_window=100):
                got.append(b.id)
    assert len(set(got)) == 300
    assert len(got) < 3_000
    honest = CursorServer(5_000, per_page=7)  # and a long honest listing is no loop
    async with honest.run() as url, Clock().client(url) as c:
        assert await batch_ids(c, page_size=7, dedup_window=10) == ids(5_000)


# --- case 7: options that do not apply to the scan's kind are refused ----------------------


async def test_options_foreign_to_the_scan_kind_are_type_errors() -> None:
    async with Clock().client("http://127.0.0.1:9") as c:
        for kw in ({"start_offset": 27}, {"filter_mode": "client"}):
            with pytest.raises(TypeError, match=next(iter(kw))):
                c.batches.iter(**kw)
        with pytest.raises(TypeError, match="start_token"):
            c.job_items.iter("bjb-x", start_token="tok")
        with pytest.raises(TypeError, match="start_skip"):
            c.jobs.iter_pages(start_skip=3)


async def test_a_stopped_cursor_scan_names_a_cursor_resume_point() -> None:
    server = CursorServer(100, per_page=10)
    async with server.run() as url:
        got: list[str] = []
        async with Clock().client(url) as c:
            items = c.batches.iter(page_size=10)
            async for b in items:
                got.append(b.id)
                if len(got) == 27:
                    break
        # The client closed under the iterator: what is left fails loudly.
        with pytest.raises(PaginationError, match="stopped before its end") as info:
            async for b in items:
                got.append(b.id)
        err = info.value
        assert "start_offset" not in str(err)
        hint = re.search(r"resume with (start_token='[^']*'(?:, start_skip=\d+)?)", str(err))
        assert hint is not None, str(err)
        async with Clock().client(url) as c:
            got += await batch_ids(c, **eval(f"dict({hint.group(1)})"))
    assert got == ids(100)


# --- case 8: an unreachable service, before any item ---------------------------------------


@pytest.mark.parametrize("listing", ["batches", "job_items"])
async def test_an_unreachable_service_raises_the_connection_error_itself(listing: str) -> None:
    async with Clock().client(f"http://127.0.0.1:{unused_port()}", max_retries=1) as c:
        scan = c.batches.iter() if listing == "batches" else c.job_items.iter("bjb-x")
        with anyio.fail_after(10), pytest.raises(APIConnectionError, match="cannot connect"):
            async for _ in scan:
                pass


async def test_a_huge_error_detail_is_cut_in_the_scan_error() -> None:
    server = CursorServer(10, per_page=5, fail_from=5, fail_detail="x" * 1_000_000)
    async with server.run() as url, Clock().client(url, max_retries=0) as c:
        with pytest.raises(PageFetchError) as info:
            async for _ in c.batches.iter():
                pass
    assert len(str(info.value)) < 1_000
    assert len(getattr(info.value.error, "detail", "")) == 1_000_000  # kept whole there

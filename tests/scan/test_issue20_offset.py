"""Issue 20, cases 2 to 5: offset scans whose errors, ends and totals tell the
truth about what the consumer received, against ``edge_server`` (written apart
from the simulator)."""

from __future__ import annotations

import re
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from edge_server import JOB, Clock, OffsetServer

from aiobatch import (
    BatchClient,
    DriftError,
    InternalServerError,
    PageFetchError,
    ResponseDecodeError,
)


async def item_ids(c: BatchClient, **kw: Any) -> list[str]:
    return [i.item_id async for i in c.job_items.iter(JOB, **kw)]


def ids(n: int, start: int = 0) -> list[str]:
    return [f"itm-{i:05d}" for i in range(start, n)]


# --- case 2: an error names what the consumer received, not what was fetched ----------


async def test_a_failed_page_behind_a_slow_consumer_names_the_consumer_position() -> None:
    failing = True

    def fail_600(offset: int, limit: int, asked: int) -> Any:
        return (500, {"detail": "boom"}) if failing and offset == 600 else None

    server = OffsetServer(1_000, override=fail_600)
    async with server.run() as url, Clock().client(url, max_retries=1) as c:
        got: list[str] = []
        items = c.job_items.iter(JOB, page_size=100, concurrency=8)
        with pytest.raises(PageFetchError) as info:
            async for item in items:
                got.append(item.item_id)
                if len(got) == 300:
                    # A slow consumer: pages up to 600 are fetched (and some wait
                    # in the outbox) before the page at 600 fails for good.
                    with anyio.fail_after(5):
                        while sum(1 for o, _ in server.requests if o == 600) < 2:
                            await anyio.sleep(0.001)
                        for _ in range(50):
                            await anyio.lowlevel.checkpoint()
        err = info.value
        assert isinstance(err.error, InternalServerError)
        assert err.offset == len(got) == items.progress.next_offset
        hint = re.search(r"resume with start_offset=(\d+)", str(err))
        assert hint is not None, str(err)
        assert int(hint.group(1)) == len(got)
        assert f"before offset {len(got)} was received" in str(err)
        failing = False
        got += await item_ids(c, page_size=100, start_offset=err.offset)
    assert got == ids(1_000)


# --- case 3: an error body, a blip of empty answers, a scan ending short -------------------


@pytest.mark.parametrize("at", [0, 500])
async def test_a_200_answer_with_an_error_detail_is_not_an_empty_page(at: int) -> None:
    def detail(offset: int, limit: int, asked: int) -> Any:
        return {"detail": "upstream timed out"} if offset == at else None

    server = OffsetServer(1_000, override=detail)
    async with server.run() as url, Clock().client(url) as c:
        got: list[str] = []
        expected = ResponseDecodeError if at == 0 else PageFetchError
        with pytest.raises(expected, match="error detail and no items") as info:
            async for item in c.job_items.iter(JOB, page_size=100):
                got.append(item.item_id)
    assert got == ids(at)
    if at:
        assert isinstance(info.value, PageFetchError)
        assert info.value.offset == at


@pytest.mark.parametrize("at", [0, 500])
async def test_a_blip_of_empty_answers_must_outlast_the_spaced_reasks(at: int) -> None:
    clock = Clock()

    def blip(offset: int, limit: int, asked: int) -> Any:
        # 300 ms of empty answers (on the policy's clock) from the listing's `at`.
        return {"items": [], "total_size": 1_000} if offset == at and clock.now < 0.3 else None

    server = OffsetServer(1_000, override=blip)
    async with server.run() as url, clock.client(url) as c:
        items = c.job_items.iter(JOB, page_size=100, concurrency=1)
        assert [i.item_id async for i in items] == ids(1_000)
    assert clock.sleeps[:1] == [0.5]  # a retry's first backoff, not 2 ms
    assert items.progress.done


async def test_a_scan_ending_short_of_its_total_is_an_error_or_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = OffsetServer(500, total=lambda: 1_000)
    async with server.run() as url, Clock().client(url) as c:
        got: list[str] = []
        with pytest.raises(DriftError, match="short of its total_size") as info:
            async for item in c.job_items.iter(JOB, page_size=100):
                got.append(item.item_id)
        assert got == ids(500)  # every page there was, then the error
        assert info.value.offset == 500
        items = c.job_items.iter(JOB, page_size=100, on_drift="warn")
        assert [i.item_id async for i in items] == ids(500)
    assert items.progress.done
    assert any("short of its total_size" in d for d in items.progress.drift)
    assert "short of its total_size" in caplog.text


# --- case 4: a total a little low, and one empty answer at it --------------------------------


async def test_a_total_a_little_low_is_revealed_by_a_full_size_last_page() -> None:
    def empty_once_at_998(offset: int, limit: int, asked: int) -> Any:
        return {"items": [], "total_size": 998} if offset == 998 and asked == 0 else None

    server = OffsetServer(1_000, total=lambda: 998, override=empty_once_at_998)
    async with server.run() as url, Clock().client(url) as c:
        items = c.job_items.iter(JOB, page_size=100, concurrency=4)
        assert [i.item_id async for i in items] == ids(1_000)
    assert (900, 100) in server.requests  # the last page, asked full-size
    exact = OffsetServer(950)  # with an exact total: still one request per page + the end
    async with exact.run() as url, Clock().client(url) as c:
        assert await item_ids(c, page_size=100, concurrency=4) == ids(950)
    assert len(exact.requests) == 10 + 1


# --- case 5: a listing that shrinks at the front ---------------------------------------------


async def test_a_total_that_goes_down_mid_scan_is_drift() -> None:
    server = OffsetServer(1_000)

    def shrink(offset: int, limit: int) -> None:
        if offset > 0 and len(server.ids) == 1_000:
            del server.ids[:10]  # ten items removed after page 1: offsets shift

    server.on_request = shrink
    async with server.run() as url, Clock().client(url) as c:
        got: list[str] = []
        with pytest.raises(DriftError, match="total_size moved from 1000 to 990") as info:
            async for item in c.job_items.iter(JOB, page_size=100, concurrency=1):
                got.append(item.item_id)
    assert info.value.offset == len(got)
    assert got == ids(len(got))

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

from aiobatch import BatchClient, InternalServerError, PageFetchError


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

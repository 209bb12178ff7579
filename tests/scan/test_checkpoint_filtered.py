"""A checkpoint of a client-side filtered scan: its offsets count every item,
so the items a page passes by (not matching) are done once the ones it handed
out are acknowledged; the watermark is the page's ``next_offset``, the resume
position the CLI's export and download state record."""

from __future__ import annotations

import pytest

from aiobatch import BatchClient, Checkpoint, RetryPolicy
from aiobatch.testing import SimJob, Simulator

JOB = "bjb-cpf"


async def test_the_watermark_passes_what_a_client_side_filter_skipped(
    policy: RetryPolicy,
) -> None:
    async with Simulator(jobs=[SimJob(job_id=JOB, total_items=1_000, seed=3)]) as sim:
        cp = Checkpoint()
        async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as client:
            pages = client.job_items.iter_pages(
                JOB, status="failed", filter_mode="client", page_size=100, checkpoint=cp
            )
            gaps = 0
            async with pages:
                async for page in pages:
                    assert page.positions is not None
                    gaps += not page.items or page.positions[-1] + 1 < page.next_offset
                    cp.ack(page)
                    assert cp.offset == page.next_offset
            assert cp.filter_mode == "client"
            assert gaps  # some page ended on an item the filter passed by
            resumed = Checkpoint.from_json(cp.to_json())
            assert resumed.offset == 1_000
            assert resumed.filter_mode == "client"
            rest = client.job_items.iter(JOB, status="failed", checkpoint=resumed)
            assert [i async for i in rest] == []


def test_a_new_checkpoint_starts_at_zero() -> None:
    cp = Checkpoint()
    assert (cp.offset, cp.filter_mode) == (0, None)
    with pytest.raises(AttributeError):
        cp.offset = 3  # type: ignore[misc]

"""Jobs described item by item: ``SimJob(items=[...])`` with ``SimItem``s or
plain statuses, served exactly as described (through the real client)."""

from __future__ import annotations

import pytest

from aiobatch.testing import SimItem, SimJob
from aiobatch.testing.pytest_plugin import SimulatorFactory

STATUSES = ["completed", "failed", "skipped", "pending", "cancelled", "processing"]


async def test_a_list_of_statuses(batch_simulator_factory: SimulatorFactory) -> None:
    job = SimJob(job_id="bjb-list", items=["completed", "failed", "completed", "skipped"])
    assert job.total_items == 4
    sim = await batch_simulator_factory([job])
    async with sim.client() as c:
        items = [i async for i in c.job_items.iter("bjb-list")]
        failed = [i async for i in c.job_items.iter("bjb-list", status="failed")]
        status = await c.jobs.get("bjb-list")
    assert [str(i.status) for i in items] == ["completed", "failed", "completed", "skipped"]
    assert [i.item_id for i in failed] == [items[1].item_id]
    assert status.job.total_items == 4


async def test_items_with_names_errors_and_job_ids(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    job = SimJob(
        job_id="bjb-explicit",
        items=[
            SimItem("completed", name="contracts/a.pdf", job_id="pjb-a"),
            SimItem("failed", name="b.pdf", error="password protected"),
            SimItem("skipped", name='odd "name"\n.pdf'),
            "completed",
        ],
        result_error_every=0,
        result_missing_every=0,
    )
    sim = await batch_simulator_factory([job])
    async with sim.client() as c:
        items = [i async for i in c.job_items.iter("bjb-explicit")]
        results = [r async for r in c.job_items.iter_results("bjb-explicit", status=None)]
    assert [i.item_name for i in items[:3]] == ["contracts/a.pdf", "b.pdf", 'odd "name"\n.pdf']
    assert items[0].job_id == "pjb-a"
    assert items[1].error_message == "password protected"
    assert items[3].item_name  # generated
    assert items[3].job_id  # generated
    # The given job id is a parse job like any other: its result is served.
    first = results[0]
    assert first.ok
    assert first.content == sim.result_content("pjb-a")
    assert first.content is not None
    assert b"contracts/a.pdf" in first.content.data
    assert [r.error.kind if r.error else None for r in results] == [None, "failed", "no_job", None]


async def test_many_items_page_and_filter_exactly(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    statuses = [STATUSES[(i * 7 + i // 3) % len(STATUSES)] for i in range(2345)]
    sim = await batch_simulator_factory([SimJob(job_id="bjb-many", items=statuses)])
    async with sim.client() as c:
        for wanted in (None, "failed", "processing"):
            got = [
                str(i.status)
                async for i in c.job_items.iter("bjb-many", status=wanted, page_size=97)
            ]
            expected = [s for s in statuses if wanted is None or s == wanted]
            assert got == expected
        resumed = [
            i.item_id
            async for i in c.job_items.iter(
                "bjb-many", status="failed", filter_mode="server", start_offset=100
            )
        ]
    assert resumed == sim.item_ids("bjb-many", "failed")[100:]
    assert sim.count("bjb-many", "failed") == statuses.count("failed")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SimItem("completed", error="x"), "only a failed item"),
        (lambda: SimItem("skipped", job_id="j"), "no processing job"),
        (lambda: SimItem("done"), "item status"),
        (lambda: SimItem("completed", job_id="a/b"), "job_id"),
        (lambda: SimJob(items=["completed"], running=True), "running"),
        (
            lambda: SimJob(items=[SimItem(job_id="j"), SimItem(job_id="j")]),
            "share a job_id",
        ),
        (lambda: SimJob(items=[3]), "SimItem"),  # type: ignore[list-item]
    ],
)
def test_bad_descriptions_are_refused(make: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()  # type: ignore[operator]

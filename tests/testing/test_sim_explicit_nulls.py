"""Items carry their unset nullable fields as explicit ``null``, as a FastAPI
server answers (the SDK's strict validation accepts both; see test_sim_sdk)."""

from __future__ import annotations

import pytest
from _sim_http import get

from aiobatch.testing import SimJob, Simulator

NULLABLE = {
    "completed_at",
    "effective_at",
    "error_message",
    "job_id",
    "job_record_id",
    "skip_reason",
    "started_at",
}
JOB = "bjb-nulls"


@pytest.mark.parametrize("explicit", [True, False])
async def test_every_item_names_every_field_or_none(explicit: bool) -> None:
    job = SimJob(job_id=JOB, total_items=300, seed=3)
    async with Simulator(jobs=[job], explicit_nulls=explicit) as sim:
        page = (await get(sim, f"/{JOB}/items", limit=300)).json()
    items = page["items"]
    assert len({i["status"] for i in items}) >= 4  # several statuses' shapes
    for item in items:
        if explicit:
            assert item.keys() >= NULLABLE, item
        else:
            assert None not in item.values(), item
    nulls = sum(v is None for i in items for v in i.values())
    assert (nulls > 0) is explicit

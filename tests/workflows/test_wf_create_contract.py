"""v1 create as the contract says: 201 Created, ``page_size`` 1..1000, and item-ids
jobs need a project (refused before any request when none is set)."""

from __future__ import annotations

import pytest
from _contract import Contract, app
from _servers import serve

from aiobatch import BatchClient, ConfigurationError, RetryPolicy


async def test_create_answers_201_and_sends_the_project(policy: RetryPolicy, no_env: None) -> None:
    state = Contract()
    async with serve(app(state)) as url, BatchClient("k", base_url=url, retry=policy) as c:
        job = await c.jobs.create(job_config={}, item_ids=["dfl-1", "dfl-2"], project_id="prj-9")
    assert (job.id, job.project_id, job.total_items) == ("bjb-new", "prj-9", 2)
    assert [(s.method, dict(s.query)) for s in state.seen] == [("POST", {"project_id": "prj-9"})]


async def test_item_ids_without_a_project_fail_before_any_request(
    policy: RetryPolicy, no_env: None
) -> None:
    state = Contract()
    async with serve(app(state)) as url, BatchClient("k", base_url=url, retry=policy) as c:
        with pytest.raises(ConfigurationError, match="need a project: pass project_id="):
            await c.jobs.create(job_config={}, item_ids=["dfl-1"])
        with pytest.raises(ConfigurationError, match=r"jobs\.retry_failed .* project_id="):
            await c.jobs.retry_failed("bjb-1")
        # A directory job takes its project from the directory; a dry run creates nothing.
        await c.jobs.create(job_config={}, directory_id="dir-1")
    assert [s.method for s in state.seen] == ["POST"]


@pytest.mark.parametrize("page_size", [0, 1001])
async def test_page_size_bounds(page_size: int, policy: RetryPolicy, no_env: None) -> None:
    state = Contract()
    async with serve(app(state)) as url, BatchClient("k", base_url=url, retry=policy) as c:
        with pytest.raises(ValueError, match="page_size must be"):
            await c.jobs.create(job_config={}, directory_id="d", page_size=page_size)
    assert state.seen == []

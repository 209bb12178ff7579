"""The logger tree: every record on a child of ``aiobatch``, with its numbers as
``extra`` fields (what a JSON formatter turns into fields)."""

from __future__ import annotations

import logging

import pytest

from aiobatch import RetryPolicy
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

TREE = {"aiobatch.http", "aiobatch.scan", "aiobatch.retry", "aiobatch.events"}


async def test_records_carry_fields_on_a_documented_logger(
    policy: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiobatch")
    faults = Faults(server_error=Trigger(first=1))
    sim = Simulator(jobs=[SimJob(job_id="bjb-logs", total_items=120)], faults=faults)
    async with sim, sim.client(retry=policy) as c:
        items = [i async for i in c.job_items.iter("bjb-logs", page_size=100)]
    assert len(items) == 120
    records = [r for r in caplog.records if r.name.startswith("aiobatch")]
    assert {r.name for r in records} <= TREE
    http = [r for r in records if r.name == "aiobatch.http"]
    assert http
    for r in http:
        assert r.__dict__["method"] == "GET"
        assert r.__dict__["url_template"] == "/api/v1/beta/batch-processing/{id}/items"
        assert isinstance(r.__dict__["status"], int)
        assert r.__dict__["bytes"] >= 0
        assert r.__dict__["duration_ms"] >= 0
    (retry,) = [r for r in records if r.name == "aiobatch.retry"]
    assert retry.__dict__["status"] == 503
    assert retry.__dict__["attempt"] == 2
    assert retry.__dict__["delay"] > 0
    throttled = [r for r in records if r.name == "aiobatch.scan" and "concurrency" in r.__dict__]
    assert throttled  # the 503 halved the scan's concurrency
    assert throttled[0].__dict__["concurrency"] < throttled[0].__dict__["concurrency_before"]

"""``aiobatch jobs list | status | cancel | watch``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator

import pytest
from cli_support import TtyStringIO, clear_env, cli, conn, drive

from aiobatch.cli import run
from aiobatch.models import encode
from aiobatch.testing import SimClock, SimJob, Simulator

DONE = "bjb-cli-done"
LIVE = "bjb-cli-live"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [
        SimJob(job_id=DONE, total_items=500, mix={"completed": 0.9, "failed": 0.1}),
        SimJob(job_id=LIVE, total_items=100, running=True, rate=50.0, concurrency=4),
        SimJob(job_id="bjb-cli-extract", total_items=10, job_type="extract"),
    ]
    async with Simulator(jobs=jobs, clock=SimClock.frozen_at()) as s:
        yield s


async def test_list_all_jobs(sim: Simulator) -> None:
    r = await cli("jobs", "list", "--format", "jsonl", sim=sim)
    assert r.code == 0
    assert sorted(d["id"] for d in r.jsonl()) == sorted(sim.job_ids)
    r = await cli("jobs", "list", sim=sim)  # table
    assert r.code == 0
    assert all(job_id in r.out for job_id in sim.job_ids)
    r = await cli("jobs", "list", "--format", "csv", sim=sim)
    assert sorted(row["id"] for row in csv.DictReader(io.StringIO(r.out))) == sorted(sim.job_ids)
    r = await cli("jobs", "list", "--format", "json", sim=sim)
    assert len(json.loads(r.out)) == len(sim.job_ids)


async def test_list_filters_and_one_page(sim: Simulator) -> None:
    r = await cli("jobs", "list", "--job-type", "extract", "--format", "jsonl", sim=sim)
    assert [d["id"] for d in r.jsonl()] == ["bjb-cli-extract"]
    r = await cli("jobs", "list", "--limit", "1", "--format", "json", sim=sim)
    doc = json.loads(r.out)
    assert len(doc["items"]) == 1
    assert doc["total_size"] == 3
    r = await cli("jobs", "list", "--limit", "2", "--format", "jsonl", sim=sim)
    assert len(r.lines()) == 2


async def test_status(sim: Simulator) -> None:
    r = await cli("jobs", "status", "--job-id", DONE, "--format", "json", sim=sim)
    assert r.code == 0
    assert json.loads(r.out) == json.loads(encode(sim.job(DONE)))
    r = await cli("jobs", "status", "--job-id", DONE, sim=sim)
    assert r.code == 0
    assert "completed" in r.out
    assert "100.0%" in r.out


async def test_cancel(sim: Simulator) -> None:
    sim.advance(1.0)
    r = await cli("jobs", "cancel", "--job-id", LIVE, "--reason", "wrong dir", sim=sim)
    assert r.code == 0
    assert r.out.startswith(f"job {LIVE}: cancelled")
    assert sim.job(LIVE).job.status == "cancelled"
    r = await cli("jobs", "cancel", "--job-id", LIVE, "--format", "json", sim=sim)
    assert json.loads(r.out)["status"] == "cancelled"


async def test_watch_until_completed(sim: Simulator) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["jobs", "watch", "--job-id", LIVE, "--interval", "0.001", "--format", "json"]
    task = asyncio.create_task(run([*argv, *conn(sim)], stdout=out, stderr=err))
    assert await drive(sim, task, 0.25) == 0
    assert json.loads(out.getvalue())["job"]["status"] == "completed"
    log = err.getvalue().splitlines()
    assert len(log) > 2  # one line per change of the counts
    assert log[-1].startswith(f"job {LIVE}: completed, ")
    assert "(100.0%)" in log[-1]


async def test_watch_progress_bar_on_a_terminal(sim: Simulator) -> None:
    out, err = io.StringIO(), TtyStringIO()
    argv = ["jobs", "watch", "--job-id", LIVE, "--interval", "0.001"]
    task = asyncio.create_task(run([*argv, *conn(sim)], stdout=out, stderr=err))
    assert await drive(sim, task, 0.5) == 0
    assert "completed" in out.getvalue()
    assert f"job {LIVE}" in err.getvalue()


async def test_watch_exit_status(sim: Simulator) -> None:
    await cli("jobs", "cancel", "--job-id", LIVE, sim=sim)
    r = await cli("jobs", "watch", "--job-id", LIVE, "--exit-status", "-q", sim=sim)
    assert (r.code, r.err) == (1, "")
    r = await cli("jobs", "watch", "--job-id", LIVE, sim=sim)
    assert r.code == 0  # without --exit-status, reaching any end is success
    r = await cli("jobs", "watch", "--job-id", DONE, "--exit-status", sim=sim)
    assert r.code == 0

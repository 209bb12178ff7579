"""``aiobatch jobs wait``: exit 0 completed, 1 failed or cancelled, 3 timed out;
a line per change off a terminal, a bar on one."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest
from cli_support import TtyStringIO, clear_env, cli, conn, drive

from aiobatch.cli import run
from aiobatch.testing import SimClock, SimJob, Simulator

LIVE = "bjb-wait-live"
STUCK = "bjb-wait-stuck"
FAILED = "bjb-wait-failed"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [
        SimJob(job_id=LIVE, total_items=100, running=True, rate=50.0, concurrency=4),
        SimJob(job_id=STUCK, total_items=10, running=True, start_delay=10_000.0),
        SimJob(job_id=FAILED, total_items=10, status="failed", error_message="\x1b[2Jboom"),
    ]
    async with Simulator(jobs=jobs, clock=SimClock.frozen_at()) as s:
        yield s


async def test_wait_completed_exits_0_with_a_line_per_change(sim: Simulator) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["jobs", "wait", "--job-id", LIVE, "--interval", "0.001", "--format", "json"]
    task = asyncio.create_task(run([*argv, *conn(sim)], stdout=out, stderr=err))
    assert await drive(sim, task, 0.25) == 0
    assert json.loads(out.getvalue())["job"]["status"] == "completed"
    log = err.getvalue().splitlines()
    assert len(log) > 2
    assert len(set(log)) == len(log)  # one line per change, never a repeat
    assert log[-1].startswith(f"job {LIVE}: completed, ")
    assert "(100.0%)" in log[-1]


async def test_wait_draws_a_bar_on_a_terminal(sim: Simulator) -> None:
    out, err = io.StringIO(), TtyStringIO()
    argv = ["jobs", "wait", "--job-id", LIVE, "--interval", "0.001"]
    task = asyncio.create_task(run([*argv, *conn(sim)], stdout=out, stderr=err))
    assert await drive(sim, task, 0.5) == 0
    assert "completed" in out.getvalue()
    assert f"job {LIVE}" in err.getvalue()


async def test_wait_failed_or_cancelled_exits_1(sim: Simulator) -> None:
    r = await cli("jobs", "wait", "--job-id", FAILED, sim=sim)
    assert r.code == 1
    assert "failed" in r.out
    assert "\x1b" not in r.out + r.err  # the server's text is shown escaped
    await cli("jobs", "cancel", "--job-id", LIVE, sim=sim)
    r = await cli("jobs", "wait", "--job-id", LIVE, "-q", "--format", "json", sim=sim)
    assert (r.code, r.err) == (1, "")
    assert json.loads(r.out)["job"]["status"] == "cancelled"


async def test_wait_timeout_exits_3(sim: Simulator) -> None:
    r = await cli(
        "jobs", "wait", "--job-id", STUCK, "--interval", "0.01", "--timeout", "0.05", sim=sim
    )
    assert r.code == 3
    assert r.out == ""
    assert r.err.splitlines()[-1] == (
        f"aiobatch: error: timed out: job {STUCK} did not end within 0.05 s "
        "(last status: pending, 0.0%)"
    )


async def test_wait_timeout_is_the_wait_not_the_request_timeout(sim: Simulator) -> None:
    # The per-request --timeout still works before the command.
    r = await cli("--timeout", "5", "jobs", "wait", "--job-id", FAILED, "--timeout", "1", sim=sim)
    assert r.code == 1
    r = await cli("jobs", "wait", "--job-id", FAILED, "--timeout", "-1", sim=sim)
    assert r.code == 2

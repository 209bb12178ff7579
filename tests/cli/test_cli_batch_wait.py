"""``aiobatch batches wait``: exit 0 completed, 1 failed or cancelled, 3 timed out;
THROTTLED is not an end; a line per change on stderr."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest
from cli_support import clear_env, cli, conn, drive

from aiobatch.cli import run
from aiobatch.testing import SimBatch, SimClock, Simulator

LIVE, SLOW, FAILED = "bat-wait-live", "bat-wait-slow", "bat-wait-failed"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at()) as s:
        s.batches.add(SimBatch(batch_id=LIVE, files=4, throttled_for=5.0))
        s.batches.add(SimBatch(batch_id=SLOW, files=4, start_delay=10_000.0))
        s.batches.add(SimBatch(batch_id=FAILED, files=4, status="FAILED"))
        yield s


async def test_batches_wait_completed_exits_0_through_throttled(sim: Simulator) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["batches", "wait", "--batch-id", LIVE, "--interval", "0.001", "--format", "json"]
    task = asyncio.create_task(run([*argv, *conn(sim)], stdout=out, stderr=err))
    assert await drive(sim, task, 0.5) == 0
    assert json.loads(out.getvalue())["status"] == "COMPLETED"
    log = err.getvalue().splitlines()
    assert f"batch {LIVE}: THROTTLED" in log  # seen, and not taken for an end
    assert log[-1] == f"batch {LIVE}: COMPLETED"
    assert len(set(log)) == len(log)  # one line per change


async def test_batches_wait_failed_or_cancelled_exits_1(sim: Simulator) -> None:
    sim.advance(60)
    r = await cli("batches", "wait", "--batch-id", FAILED, "--format", "json", sim=sim)
    assert r.code == 1
    assert json.loads(r.out)["status"] == "FAILED"
    await cli("batches", "cancel", "--batch-id", SLOW, sim=sim)
    r = await cli("batches", "wait", "--batch-id", SLOW, "-q", "--format", "json", sim=sim)
    assert (r.code, json.loads(r.out)["status"]) == (1, "CANCELLED")


async def test_batches_wait_timeout_exits_3(sim: Simulator) -> None:
    r = await cli(
        "batches", "wait", "--batch-id", SLOW, "--interval", "0.01", "--timeout", "0.05", sim=sim
    )
    assert r.code == 3
    assert r.out == ""
    assert r.err.splitlines()[-1] == (
        f"aiobatch: error: timed out: batch {SLOW} did not end within 0.05 s (last status: PENDING)"
    )

"""Friction a new operator hit (issue 24, case 14): status case, pasted ids,
wording that names the flag the next command needs, SIGTERM, the simulator's
batch ids."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import Gate, clear_env, cli, start_cli, wait_for

from aiobatch import BatchClient
from aiobatch.models import BatchStatus, ItemStatus
from aiobatch.testing import Faults, SimBatch, SimClock, SimJob, Simulator
from aiobatch.testing._cli import build_parser, serve

T0 = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    job = SimJob(job_id="bjb-op", total_items=40, mix={"completed": 0.5, "failed": 0.5})
    async with Simulator(jobs=[job], clock=SimClock.frozen_at(T0)) as s:
        s.batches.add(SimBatch(batch_id="bat-done", created_at=T0 - 1000, files=2))
        yield s


async def test_v2_statuses_in_lower_case_are_accepted(sim: Simulator) -> None:
    r = await cli("batches", "list", "--status", "completed", "--format", "jsonl", sim=sim)
    assert r.code == 0, r.err
    assert [d["id"] for d in r.jsonl()] == ["bat-done"]


async def test_v1_statuses_in_upper_case_are_accepted(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", "bjb-op", "--status", "FAILED", sim=sim)
    assert r.code == 0, r.err
    assert r.jsonl()
    assert {d["status"] for d in r.jsonl()} == {"failed"}


async def test_a_near_miss_suggests_the_right_status(sim: Simulator) -> None:
    r = await cli("batches", "list", "--status", "complete", sim=sim)
    assert r.code == 2
    assert "did you mean COMPLETED?" in r.err


async def test_the_library_accepts_either_case_and_suggests(sim: Simulator) -> None:
    async with BatchClient(sim.api_key, base_url=sim.base_url) as client:
        page = await client.batches.list(status="completed")
        assert [b.id for b in page.items] == ["bat-done"]
        items = await client.job_items.list("bjb-op", status="FAILED")
        assert {i.status for i in items.items} == {ItemStatus.FAILED}
        with pytest.raises(ValueError, match=r"did you mean COMPLETED\?"):
            await client.batches.list(status="complet")
    assert BatchStatus("COMPLETED") is BatchStatus.COMPLETED


async def test_a_job_id_with_spaces_around_it_is_trimmed(sim: Simulator) -> None:
    r = await cli("jobs", "status", "--job-id", " bjb-op\t", "--format", "json", sim=sim)
    assert r.code == 0, r.err
    assert json.loads(r.out)["job"]["id"] == "bjb-op"
    assert all(" " not in q.path and "%20" not in q.path for q in sim.stats.log)
    r = await cli("jobs", "status", "--job-id", "   ", sim=sim)
    assert r.code == 2
    assert "must not be blank" in r.err


async def test_resume_without_state_names_force(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    out.write_text('{"item_id": "kept"}\n')  # data, but no state file
    r = await cli("items", "export", "--job-id", "bjb-op", "-o", str(out), "--resume", sim=sim)
    assert r.code == 2
    assert "--force" in r.err
    assert "Run without --resume to overwrite" not in r.err


async def test_sim_banner_lists_the_batches() -> None:
    ns = build_parser().parse_args(["--port", "0", "--items", "5", "--batches", "2"])
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(serve(ns, out=out, stop=stop))
    await wait_for(lambda: "faults:" in out.getvalue())
    stop.set()
    await task
    batches = [line for line in out.getvalue().splitlines() if line.startswith("batch: ")]
    assert [line.split()[1] for line in batches] == ["bat-sim-0002", "bat-sim-0001"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sigterm_exits_143_and_leaves_the_export_resumable(tmp_path: Path) -> None:
    job = SimJob(job_id="bjb-term", total_items=1000)
    gate = Gate(allow=2)
    async with Simulator(jobs=[job], faults=Faults(latency_ms=0.001), sleep=gate) as sim:
        assert sim.api_key is not None
        out = tmp_path / "items.jsonl"
        state = tmp_path / "items.jsonl.aiobatch-state.json"
        argv = ["items", "export", "--job-id", job.job_id, "-o", str(out), "--page-size", "250"]
        argv += ["--concurrency", "1", "--base-url", sim.base_url, "--api-key", sim.api_key]
        proc = await start_cli(*argv)
        await asyncio.wait_for(gate.blocked.wait(), 30)
        await wait_for(lambda: state.exists() and json.loads(state.read_text())["rows"] == 500)
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        gate.release()
        text = stderr.decode()
        assert proc.returncode == 143, text
        assert "--resume" in text
        assert "terminated" in text
        assert state.exists()
        assert len(out.read_text().splitlines()) == 500

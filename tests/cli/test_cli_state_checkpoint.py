"""The export and download state files hold a ``Checkpoint`` as their record of
what is done (one implementation of "what is done", issue 20): its offset is
what was written, a resume hands out every item not acked and none that was,
and a state file of release 1 (``next_offset``) still resumes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import Gate, clear_env, cli, wait_for

from aiobatch import Checkpoint
from aiobatch.cli._download import STATE_NAME
from aiobatch.cli._durable import seal
from aiobatch.testing import Faults, SimJob, Simulator

JOB = SimJob(job_id="bjb-cpstate", total_items=200, seed=4, result_error_every=0)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


async def _interrupted(argv: list[str], state: Path, *, allow: int) -> Simulator:
    gate = Gate(allow=allow)
    sim = Simulator(jobs=[JOB], faults=Faults(latency_ms=0.001), sleep=gate)
    await sim.start()
    task = asyncio.create_task(cli(*argv, sim=sim))
    await asyncio.wait_for(gate.blocked.wait(), 10)
    await wait_for(lambda: state.exists() and _checkpoint(state).offset > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.release()
    sim.faults = Faults()
    return sim


def _checkpoint(state: Path) -> Checkpoint:
    doc = json.loads(state.read_text())
    return Checkpoint.from_json(json.dumps(doc.get("checkpoint")))


def _as_release_1(state: Path, done: int) -> None:
    """Rewrite ``state`` as release 1 wrote it: ``next_offset``, no checkpoint."""
    doc: dict[str, Any] = json.loads(state.read_text())
    del doc["checkpoint"], doc["check"]
    doc.update(version=1, filter_mode="none", next_offset=done)
    state.write_text(json.dumps({**doc, "check": seal(doc)}))


def _lines(path: Path) -> list[str]:
    return [json.loads(line)["item_id"] for line in path.read_text().splitlines()]


async def test_an_export_state_holds_the_checkpoint_of_what_was_written(tmp_path: Path) -> None:
    out, state = tmp_path / "items.jsonl", tmp_path / "items.jsonl.aiobatch-state.json"
    argv = ["items", "export", "--job-id", JOB.job_id, "-o", str(out), "--page-size", "25"]
    sim = await _interrupted([*argv, "--concurrency", "1"], state, allow=3)
    try:
        rows = json.loads(state.read_text())["rows"]
        assert _checkpoint(state).offset == rows == len(_lines(out)) > 0
        r = await cli(*argv, "--resume", sim=sim)
        assert r.code == 0, r.err
        assert _lines(out) == sim.item_ids(JOB.job_id)
    finally:
        await sim.stop()


@pytest.mark.parametrize("what", ["export", "download"])
async def test_a_release_1_state_file_still_resumes(tmp_path: Path, what: str) -> None:
    out = tmp_path / "out.jsonl"
    state = tmp_path / "out.jsonl.aiobatch-state.json"
    argv = ["items", what, "--job-id", JOB.job_id, "-o", str(out), "--page-size", "10"]
    if what == "download":
        argv += ["--format", "jsonl", "--status", "all"]
    sim = await _interrupted([*argv, "--concurrency", "1"], state, allow=12)
    try:
        done = _checkpoint(state).offset
        _as_release_1(state, done)
        r = await cli(*argv, "--resume", sim=sim)
        assert r.code == (1 if what == "download" else 0), r.err  # 1: some items failed
        assert f"continuing at {'offset ' if what == 'download' else ''}{done:,}" in r.err
        assert _lines(out) == sim.item_ids(JOB.job_id)
        assert not state.exists()
    finally:
        await sim.stop()


async def test_a_release_1_state_file_edited_by_hand_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    state = out / STATE_NAME
    argv = ["items", "download", "--job-id", JOB.job_id, "-o", str(out), "--status", "all"]
    argv += ["--page-size", "10", "--concurrency", "1"]
    sim = await _interrupted(argv, state, allow=12)
    try:
        _as_release_1(state, _checkpoint(state).offset)
        doc = json.loads(state.read_text())
        doc["next_offset"] += 10
        state.write_text(json.dumps(doc))
        r = await cli(*argv, "--resume", sim=sim)
    finally:
        await sim.stop()
    assert r.code == 2, r.err
    assert f"field next_offset of state file {state} was edited" in r.err


async def test_a_checkpoint_that_is_not_one_is_refused_naming_the_field(tmp_path: Path) -> None:
    out = tmp_path / "out"
    state = out / STATE_NAME
    argv = ["items", "download", "--job-id", JOB.job_id, "-o", str(out), "--status", "all"]
    argv += ["--page-size", "10", "--concurrency", "1"]
    sim = await _interrupted(argv, state, allow=12)
    try:
        doc = json.loads(state.read_text())
        doc["checkpoint"]["version"] = 7
        del doc["check"]  # as if no digest were saved: the checkpoint itself is checked
        state.write_text(json.dumps(doc))
        r = await cli(*argv, "--resume", sim=sim)
    finally:
        await sim.stop()
    assert r.code == 2, r.err
    assert f"field checkpoint of state file {state} is not a checkpoint" in r.err
    assert "unknown Checkpoint version 7" in r.err

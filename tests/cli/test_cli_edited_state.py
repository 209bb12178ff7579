"""A state file edited by hand is refused, naming the file and the field
(issue 24, case 7): a raised ``next_offset`` used to skip items silently
("25 of 25")."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cli_support import Gate, clear_env, cli, wait_for

from aiobatch.cli._download import STATE_NAME
from aiobatch.testing import Faults, SimJob, Simulator

JOB = SimJob(job_id="bjb-edit", total_items=200, seed=2, result_error_every=0)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


async def _interrupted(argv: list[str], state: Path, *, allow: int) -> Simulator:
    gate = Gate(allow=allow)
    sim = Simulator(jobs=[JOB], faults=Faults(latency_ms=0.001), sleep=gate)
    await sim.start()
    task = asyncio.create_task(cli(*argv, sim=sim))
    await asyncio.wait_for(gate.blocked.wait(), 10)
    await wait_for(lambda: state.exists() and _offset(state) > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.release()
    sim.faults = Faults()
    return sim


def _export(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    out = tmp_path / "items.jsonl"
    argv = ["items", "export", "--job-id", JOB.job_id, "-o", str(out)]
    return out, tmp_path / "items.jsonl.aiobatch-state.json", [*argv, "--page-size", "25"]


def _offset(state: Path) -> int:
    offset: int = json.loads(state.read_text())["checkpoint"]["offset"]
    return offset


def _edit(state: Path, field: str, change: int) -> None:
    """Add ``change`` to ``field`` (``checkpoint.offset``: the resume position)."""
    doc = json.loads(state.read_text())
    *outer, name = field.split(".")
    inner = doc
    for key in outer:
        inner = inner[key]
    inner[name] += change
    state.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("field", "change"), [("checkpoint.offset", 25), ("checkpoint.offset", -1), ("rows", 1)]
)
async def test_an_edited_export_state_is_refused(tmp_path: Path, field: str, change: int) -> None:
    _, state, argv = _export(tmp_path)
    sim = await _interrupted([*argv, "--concurrency", "1"], state, allow=2)
    try:
        _edit(state, field, change)
        r = await cli(*argv, "--resume", sim=sim)
    finally:
        await sim.stop()
    assert r.code == 2, r.err
    assert f"field {field.split('.')[0]} of state file {state} was edited" in r.err
    assert "--force" in r.err


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
async def test_an_edited_download_state_is_refused(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("out" if fmt == "files" else "out.jsonl")
    state = out / STATE_NAME if fmt == "files" else tmp_path / "out.jsonl.aiobatch-state.json"
    argv = ["items", "download", "--job-id", JOB.job_id, "--format", fmt, "-o", str(out)]
    argv += ["--page-size", "10", "--concurrency", "1", "--status", "all"]
    sim = await _interrupted(argv, state, allow=12)
    try:
        _edit(state, "checkpoint.offset", 7)
        r = await cli(*argv, "--resume", sim=sim)
    finally:
        await sim.stop()
    assert r.code == 2, r.err
    assert f"field checkpoint of state file {state} was edited" in r.err


async def test_an_unedited_state_still_resumes(tmp_path: Path) -> None:
    out, state, argv = _export(tmp_path)
    sim = await _interrupted([*argv, "--concurrency", "1"], state, allow=2)
    try:
        doc = json.loads(state.read_text())
        state.write_text(json.dumps(doc, indent=4))  # reformatted, not changed
        r = await cli(*argv, "--resume", sim=sim)
        want = sim.item_ids(JOB.job_id)
    finally:
        await sim.stop()
    assert r.code == 0, r.err
    assert [json.loads(line)["item_id"] for line in out.read_text().splitlines()] == want

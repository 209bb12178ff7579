"""``aiobatch batches download`` end to end against the simulator: both formats,
per-file failures (no job, failed, missing), extract batches, resume after an
interruption, a batch not finished."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import Gate, clear_env, cli, wait_for

from aiobatch.cli._download import INDEX_NAME, STATE_NAME
from aiobatch.cli._result_files import safe_name
from aiobatch.testing import Faults, SimBatch, SimClock, Simulator
from aiobatch.testing._directories import _display_name
from aiobatch.testing._v2jobs import job_outcome

T0 = 1_800_000_000.0
PARSE = SimBatch(batch_id="bat-p", files=60, error_every=9, created_at=T0 - 600, hostile_names=True)
EXTRACT = SimBatch(batch_id="bat-x", files=20, job_type="extract_v2", created_at=T0 - 600)
LIVE = SimBatch(batch_id="bat-live", files=5, created_at=T0, start_delay=100)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0)) as s:
        s.batches.extend([PARSE, EXTRACT, LIVE])
        yield s


def index(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / INDEX_NAME).read_text().splitlines()]


def results_of(sim: Simulator, batch_id: str) -> list[dict[str, Any]]:
    state = sim.batches.get(batch_id)
    assert state is not None
    found = state.results(sim.clock.now())
    assert found is not None
    return found


def expected_kind(result: dict[str, Any]) -> str | None:
    ref = result["job_reference"]
    if ref is None:
        return "no_job"
    return {"COMPLETED": None, "FAILED": "failed", "MISSING": "missing"}[job_outcome(ref["id"])]


def check_files(sim: Simulator, batch_id: str, root: Path, ext: str = ".md") -> None:
    rows = index(root)
    files = results_of(sim, batch_id)
    assert [r["item_id"] for r in rows] == [f["source_directory_file_id"] for f in files]
    on_disk = {p.name for p in root.iterdir()} - {INDEX_NAME}
    assert on_disk == {r["file"] for r in rows if r["file"]}
    used: set[str] = set()
    state = sim.batches.get(batch_id)
    assert state is not None
    for i, (row, f) in enumerate(zip(rows, files, strict=True)):
        assert row["error_kind"] == expected_kind(f)
        # Named after the source directory's display_name (made safe), not the id.
        name = _display_name(state.batch, i)
        assert row["item_name"] == name
        if row["status"] == "ok":
            assert row["file"] == safe_name(name, row["item_id"], ext, used)
            assert "/" not in row["file"]
            assert row["bytes"] == (root / row["file"]).stat().st_size > 0
        else:
            assert row["file"] is None


async def test_files_and_per_file_errors(sim: Simulator, tmp_path: Path) -> None:
    root = tmp_path / "out"
    res = await cli("batches", "download", "--batch-id", "bat-p", "-o", str(root), sim=sim)
    assert res.code == 1, res.err  # some files have no result
    check_files(sim, "bat-p", root)
    first = index(root)[0]
    if first["status"] == "ok":
        assert (root / first["file"]).read_text().startswith(f"# {first['item_id']}")
    assert "have no result" in res.err
    assert not (root / STATE_NAME).exists()


async def test_jsonl_of_an_extract_batch(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    argv = ["batches", "download", "--batch-id", "bat-x", "--format", "jsonl", "-o", str(out)]
    res = await cli(*argv, sim=sim)
    assert res.code in (0, 1), res.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    files = results_of(sim, "bat-x")
    assert [r["item_id"] for r in rows] == [f["source_directory_file_id"] for f in files]
    for row, f in zip(rows, files, strict=True):
        assert row["error_kind"] == expected_kind(f)
        if row["status"] == "ok":
            assert row["result"]["source_file"] == row["item_id"]
    bad = await cli(*argv, "--result", "markdown", "--force", sim=sim)
    assert bad.code != 0
    assert "extract_v2" in bad.err


async def test_unfinished_batch_is_a_clear_error(sim: Simulator, tmp_path: Path) -> None:
    res = await cli(
        "batches", "download", "--batch-id", "bat-live", "-o", str(tmp_path / "o"), sim=sim
    )
    assert res.code != 0
    assert "bat-live is PENDING" in res.err
    assert "--wait" in res.err


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
async def test_resume_after_an_interruption(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("out" if fmt == "files" else "out.jsonl")
    gate = Gate(allow=25)
    async with Simulator(
        clock=SimClock.frozen_at(T0), faults=Faults(latency_ms=1), sleep=gate
    ) as sim:
        sim.batches.add(PARSE)
        args = ["batches", "download", "--batch-id", "bat-p", "--format", fmt, "-o", str(out)]
        task = asyncio.create_task(cli(*args, "--concurrency", "3", sim=sim))
        await wait_for(lambda: gate.blocked.is_set())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        state = out / STATE_NAME if fmt == "files" else Path(f"{out}.aiobatch-state.json")
        assert state.exists()
        saved = json.loads(state.read_text())
        assert saved["batch_id"] == "bat-p"
        assert 0 < saved["items"] < 60
        gate.release()
        sim.reset_stats()
        # Another batch's state is refused.
        other = await cli(*[a if a != "bat-p" else "bat-x" for a in args], "--resume", sim=sim)
        assert other.code == 2
        assert "batch_id" in other.err
        res = await cli(*args, "--resume", sim=sim)
        fetched = [r for r in sim.stats.log if r.path.startswith("/api/v2/parse/")]
        assert len(fetched) <= 60 - saved["items"] + 6
        if fmt == "files":
            check_files(sim, "bat-p", out)
        else:
            ids = [json.loads(line)["item_id"] for line in out.read_text().splitlines()]
            assert ids == [f["source_directory_file_id"] for f in results_of(sim, "bat-p")]
    assert res.code == 1
    assert "resuming" in res.err
    assert not state.exists()

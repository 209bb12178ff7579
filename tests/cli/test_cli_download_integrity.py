"""``items download`` holds the resume guarantees of exports (#24): a file
shorter than its checkpoint is refused, never padded; a second download into
the same place is refused; a permanent failure leaves no fake interrupted
download; a corrupt index line names the file; names that fold together on
NTFS/APFS get distinct files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cli_support import Gate, clear_env, cli, wait_for

from aiobatch.cli._download import INDEX_NAME
from aiobatch.cli._result_files import safe_name
from aiobatch.testing import Faults, SimJob, Simulator

JOB = SimJob(job_id="bjb-int", total_items=60, seed=3, result_error_every=0, result_missing_every=0)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


def _args(out: Path, fmt: str) -> list[str]:
    return ["items", "download", "--job-id", JOB.job_id, "--format", fmt, "-o", str(out)]


async def _interrupt(sim: Simulator, gate: Gate, args: list[str]) -> None:
    task = asyncio.create_task(cli(*args, "--page-size", "10", "--concurrency", "2", sim=sim))
    await wait_for(lambda: gate.blocked.is_set())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
async def test_a_file_shorter_than_its_checkpoint_is_refused_not_padded(
    tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / ("out" if fmt == "files" else "out.jsonl")
    data = out / INDEX_NAME if fmt == "files" else out
    gate = Gate(allow=30)
    async with Simulator(jobs=[JOB], faults=Faults(latency_ms=1), sleep=gate) as sim:
        await _interrupt(sim, gate, _args(out, fmt))
        gate.release()
        kept = data.read_bytes()
        assert kept.count(b"\n") >= 2
        data.write_bytes(kept[: len(kept) // 2])  # unsynced data lost in a crash
        res = await cli(*_args(out, fmt), "--resume", sim=sim)
    assert res.code == 1
    assert str(data) in res.err
    assert "does not match its state file" in res.err
    assert b"\x00" not in data.read_bytes()


async def test_a_second_download_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    gate = Gate(allow=20)
    async with Simulator(jobs=[JOB], faults=Faults(latency_ms=1), sleep=gate) as sim:
        first = asyncio.create_task(cli(*_args(out, "files"), "--page-size", "10", sim=sim))
        await wait_for(lambda: gate.blocked.is_set())
        second = await cli(*_args(out, "files"), "--resume", sim=sim)
        forced = await cli(*_args(out, "files"), "--force", sim=sim)
        gate.release()
        res = await first
        want = sim.item_ids(JOB.job_id, "completed")
    for other in (second, forced):
        assert other.code == 2
        assert "being written by another aiobatch download" in other.err
        assert str(out) in other.err
    assert res.code == 0
    rows = [json.loads(line) for line in (out / INDEX_NAME).read_text().splitlines()]
    assert [r["item_id"] for r in rows] == want


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
async def test_a_wrong_job_id_leaves_no_interrupted_download(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("out" if fmt == "files" else "out.jsonl")
    async with Simulator(jobs=[JOB]) as sim:
        args = ["items", "download", "--job-id", "bjb-nope", "--format", fmt, "-o", str(out)]
        res = await cli(*args, sim=sim)
        assert res.code == 1
        assert "--resume" not in res.err
        assert not out.exists()
        assert not [p.name for p in tmp_path.glob("*")]  # noqa: ASYNC240 - a test's tmp dir
        fixed = await cli(*_args(out, fmt), sim=sim)  # the corrected command just runs
    assert fixed.code == 0, fixed.err


async def test_a_corrupt_index_line_names_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    gate = Gate(allow=30)
    async with Simulator(jobs=[JOB], faults=Faults(latency_ms=1), sleep=gate) as sim:
        await _interrupt(sim, gate, _args(out, "files"))
        gate.release()
        index = out / INDEX_NAME
        lines = index.read_bytes().splitlines(keepends=True)
        lines[0] = b"{" + b"x" * (len(lines[0]) - 2) + b"\n"
        index.write_bytes(b"".join(lines))
        res = await cli(*_args(out, "files"), "--resume", sim=sim)
    assert res.code == 1
    assert f"line 1 of {index}" in res.err


@pytest.mark.parametrize(
    ("a", "b"), [("Σας", "Σασ"), ("ſ", "s"), ("µ", "μ"), ("ϐ", "β"), ("Straße", "STRASSE")]
)
def test_names_that_fold_together_elsewhere_get_distinct_files(a: str, b: str) -> None:
    used: set[str] = set()
    first = safe_name(a, "id-1", ".md", used)
    second = safe_name(b, "id-2", ".md", used)
    assert first.casefold() != second.casefold()
    assert "id-2" in second

"""kill -9 at random points (issue 24, done-when): the real command line in a
subprocess is killed (SIGKILL: no cleanup runs) at seeded random moments while
it writes, then resumed, until it finishes.  Whatever the moments, the output
holds every item exactly once, in order, whole lines only, no NUL.  Bounded:
a few kills per case, each run at most a few seconds."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import clear_env, start_cli

from aiobatch.testing import Faults, SimJob, Simulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

JOB = SimJob(
    job_id="bjb-kill9",
    total_items=250,
    seed=9,
    mix={"completed": 0.7, "failed": 0.3},
    result_bytes=(50, 3000),
)
KILLS = 3


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    # Slow enough that a run lasts a while; every request is answered.
    async with Simulator(jobs=[JOB], faults=Faults(latency_ms=15)) as s:
        yield s


async def _run(argv: list[str], *, kill_after: float | None) -> int | None:
    """The command in a subprocess; SIGKILL after ``kill_after`` s (None: to the
    end).  The exit code (``-9``: killed)."""
    proc = await start_cli(*argv)
    try:
        if kill_after is None:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode in (0, 1), err.decode()
            return proc.returncode
        try:
            await asyncio.wait_for(proc.wait(), kill_after)
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode
    finally:
        if proc.returncode is None:  # pragma: no cover - a failed assertion above
            proc.kill()
            await proc.wait()


def _check_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    assert b"\x00" not in data, path
    assert data.endswith(b"\n"), (path, data[-60:])
    return data


def _jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["item_id"] for line in _check_bytes(path).splitlines()]


def _csv_ids(path: Path) -> list[str]:
    text = _check_bytes(path).decode()
    return [row["item_id"] for row in csv.DictReader(io.StringIO(text, newline=""))]


CASES = {
    "export-jsonl": (["items", "export", "--page-size", "5", "--concurrency", "1"], "x.jsonl"),
    "export-csv": (["items", "export", "--page-size", "5", "--concurrency", "1"], "x.csv"),
    "download-files": (["items", "download", "--status", "all", "--page-size", "20"], "dir"),
    "download-jsonl": (
        ["items", "download", "--status", "all", "--format", "jsonl", "--page-size", "20"],
        "d.jsonl",
    ),
}


@pytest.mark.parametrize("seed", [1])
@pytest.mark.parametrize("case", list(CASES))
async def test_kill_9_at_random_points_loses_and_repeats_nothing(
    sim: Simulator, tmp_path: Path, case: str, seed: int
) -> None:
    command, name = CASES[case]
    out = tmp_path / name
    assert sim.api_key is not None
    argv = [*command, "--job-id", JOB.job_id, "-o", str(out)]
    argv += ["--base-url", sim.base_url, "--api-key", sim.api_key]
    rng = random.Random(f"{case}-{seed}")
    killed = 0
    for k in range(KILLS):
        # A fresh Python takes ~0.3 s to start: kill somewhere in the writing.
        ended = await _run([*argv, *(["--resume"] if k else [])], kill_after=rng.uniform(0.4, 1.0))
        killed += ended == -signal.SIGKILL
    assert killed  # (else the case tested nothing)
    code = await _run([*argv, "--resume"], kill_after=None)
    want = sim.item_ids(JOB.job_id)
    if case == "export-csv":
        assert _csv_ids(out) == want
    elif case == "download-files":
        index = out / "aiobatch-index.jsonl"
        assert _jsonl_ids(index) == want
        for line in index.read_text().splitlines():
            row = json.loads(line)
            if row["file"] is not None:
                assert (out / row["file"]).stat().st_size == row["bytes"]
        assert code == 1  # some items failed on the server: the index says so
    else:
        assert _jsonl_ids(out) == want
    assert not list(tmp_path.rglob("*.tmp"))  # noqa: ASYNC240 - a test's tmp dir


# A kill between creating the output and saving its first checkpoint leaves an
# output with no data and no state file: --resume starts anew (it used to refuse,
# "has no state file ... --force", so a killed run could not be resumed).
@pytest.mark.parametrize("case", ["export-csv", "export-jsonl", "download-files", "download-jsonl"])
async def test_a_kill_before_the_first_checkpoint_is_resumable(
    sim: Simulator, tmp_path: Path, case: str
) -> None:
    from cli_support import cli

    from aiobatch.cli._formats import ITEM_CSV_FIELDS
    from aiobatch.cli._writers import Csv

    sim.faults = Faults()  # no kill here: no need to be slow
    command, name = CASES[case]
    out = tmp_path / name
    if case == "download-files":
        out.mkdir()
        (out / "aiobatch-index.jsonl").write_bytes(b"")
    else:
        out.write_bytes(Csv(ITEM_CSV_FIELDS).header() if case == "export-csv" else b"")
    r = await cli(*command, "--job-id", JOB.job_id, "-o", str(out), "--resume", sim=sim)
    assert r.code in (0, 1), r.err
    assert "nothing to resume" in r.err
    index = out / "aiobatch-index.jsonl" if case == "download-files" else out
    ids = _csv_ids(index) if case == "export-csv" else _jsonl_ids(index)
    assert ids == sim.item_ids(JOB.job_id)

"""A full disk and outputs that are streams (issue 24, cases 5 and 6).

The full disk is injected at the one call that writes output bytes
(``_durable._os_write``): it writes what still "fits", then fails with ENOSPC,
as a file system does.  Every message names its file; files hold whole lines
only; no empty temporary state file is left; ``--resume`` after freeing space
delivers every item exactly once.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import child_env, clear_env, cli

from aiobatch.cli import _durable
from aiobatch.testing import SimJob, Simulator, SimulatorProcess

JOB = "bjb-full-disk"
N = 1200
DL = "bjb-full-disk-download"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    mix = {"completed": 0.8, "failed": 0.2}
    job = SimJob(job_id=JOB, total_items=N, seed=3, mix=mix)
    small = SimJob(job_id=DL, total_items=150, seed=4, mix=mix, result_bytes=(100, 2000))
    async with Simulator(jobs=[job, small]) as s:
        yield s


class FullDisk:
    """``os.write`` on a disk with ``room`` bytes left (``None``: unlimited)."""

    def __init__(self, room: int | None) -> None:
        self.room = room
        self.failures = 0

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.room is None:
            return os.write(fd, data)
        if self.room <= 0:
            self.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, data[: self.room])
        self.room -= n
        return n


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    d = FullDisk(None)
    monkeypatch.setattr(_durable, "_os_write", d)
    return d


def whole_lines(path: Path) -> list[str]:
    """The lines of ``path`` (none when a new output was removed)."""
    data = path.read_bytes() if path.exists() else b""
    assert b"\x00" not in data
    assert not data or data.endswith(b"\n"), data[-80:]
    return data.decode().splitlines()


def leftovers(where: Path) -> list[str]:
    return sorted(
        p.name for p in where.rglob("*") if p.name.endswith((".tmp", ".aiobatch-partial"))
    )


@pytest.mark.parametrize("room", [1, 40_000, 123_457])
async def test_a_full_disk_leaves_whole_lines_in_an_export(
    sim: Simulator, tmp_path: Path, disk: FullDisk, room: int
) -> None:
    out = tmp_path / "items.jsonl"
    argv = ["items", "export", "--job-id", JOB, "-o", str(out), "--page-size", "100"]
    disk.room = room
    r = await cli(*argv, sim=sim)
    assert r.code == 1
    assert disk.failures
    assert "No space left on device" in r.err
    assert f"cannot write {tmp_path}" in r.err  # the output, or its state file
    assert len(whole_lines(out)) % 100 == 0
    assert leftovers(tmp_path) == []
    disk.room = None
    r = await cli(*argv, "--resume", sim=sim)
    assert r.code == 0, r.err
    ids = [json.loads(line)["item_id"] for line in whole_lines(out)]
    assert ids == sim.item_ids(JOB)


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
@pytest.mark.parametrize("room", [1, 5_000, 50_001])
async def test_a_full_disk_leaves_a_resumable_download(
    sim: Simulator, tmp_path: Path, disk: FullDisk, fmt: str, room: int
) -> None:
    out = tmp_path / ("results" if fmt == "files" else "results.jsonl")
    argv = ["items", "download", "--job-id", DL, "-o", str(out), "--format", fmt]
    argv += ["--status", "all", "--concurrency", "2"]
    disk.room = room
    r = await cli(*argv, sim=sim)
    assert r.code == 1
    assert disk.failures
    assert f"cannot write {tmp_path}" in r.err
    assert "No space left on device" in r.err
    index = out / "aiobatch-index.jsonl" if fmt == "files" else out
    whole_lines(index)
    assert leftovers(tmp_path) == []
    disk.room = None
    r = await cli(*argv, "--resume", sim=sim)
    assert r.code == 1, r.err  # some items failed on the server: the index says so
    ids = [json.loads(line)["item_id"] for line in whole_lines(index)]
    assert ids == sim.item_ids(DL)


# --- streams: a FIFO, /dev/stdout ---------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX FIFOs")
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_export_streams_to_a_fifo(sim: Simulator, tmp_path: Path, fmt: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:
            got.append(f.read())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        r = await cli("items", "export", "--job-id", JOB, "-o", str(fifo), "--format", fmt, sim=sim)
    finally:
        await asyncio.to_thread(reader.join, 30)
    assert r.code == 0, r.err
    lines = got[0].decode().splitlines()
    assert len(lines) == N + (fmt == "csv")
    assert sorted(os.listdir(tmp_path)) == ["pipe"]  # no state file
    r = await cli("items", "export", "--job-id", JOB, "-o", str(fifo), "--resume", sim=sim)
    assert r.code == 2
    assert "not a regular file" in r.err


@pytest.mark.skipif(not os.path.exists("/dev/stdout"), reason="needs /dev/stdout")
def test_export_to_dev_stdout_in_a_pipeline(tmp_path: Path) -> None:
    with SimulatorProcess(items=50) as proc:
        argv = ["items", "export", "-o", "/dev/stdout", "--job-id", proc.job_ids[0]]
        argv += ["--base-url", proc.base_url, "--api-key", proc.api_key]
        cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "aiobatch", *argv])
        p = subprocess.run(
            f"{cmd} | wc -l",
            shell=True,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
    assert p.returncode == 0, p.stderr
    assert int(p.stdout.strip()) == 50, p.stderr
    assert "exported 50 items to /dev/stdout" in p.stderr
    assert list(tmp_path.iterdir()) == []

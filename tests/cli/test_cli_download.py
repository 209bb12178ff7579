"""``aiobatch items download`` end to end against the simulator: both formats,
hostile names, per-item failures, resume after an interruption, 401, usage."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cli_support import Gate, TtyStringIO, clear_env, cli, wait_for

from aiobatch.cli._download import INDEX_NAME, STATE_NAME, safe_name
from aiobatch.testing import Faults, SimJob, Simulator, Trigger
from aiobatch.testing._results import HOSTILE_NAMES

HOSTILE = SimJob(job_id="bjb-hostile", total_items=3 * len(HOSTILE_NAMES) * 2, hostile_names=True)
CLEAN = SimJob(
    job_id="bjb-clean", total_items=150, seed=9, result_error_every=0, result_missing_every=0
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


def index(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / INDEX_NAME).read_text().splitlines()]


def names_in(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def markdown(sim: Simulator, job_id: str) -> str | None:
    body = sim.parse_result(job_id)
    return None if body is None else str(msgspec.json.decode(body)["markdown"])


def check_directory(sim: Simulator, job: str, root: Path) -> list[dict[str, Any]]:
    """Nothing outside ``root``, names unique, the index maps every item, and
    every file holds exactly the item's result."""
    rows = index(root)
    items = {i.item_id: i for i in sim.items(job, "completed")}
    assert [r["item_id"] for r in rows] == list(items)  # every item, once, in order
    files = [r["file"] for r in rows if r["file"]]
    assert len({f.lower() for f in files}) == len(files)
    on_disk = {p.name for p in root.iterdir()} - {INDEX_NAME}
    assert on_disk == set(files)  # no temp file, no state file, nothing else
    for f in files:
        assert not any(bad in f for bad in ("/", "\\", "\x00", ".."))
        assert not f.startswith(".")
        assert len(f.encode()) <= 255
        assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in f)
        assert (root / f).resolve().parent == root.resolve()
    for r in rows:
        item = items[r["item_id"]]
        assert r["item_name"] == item.item_name
        expected = markdown(sim, item.job_id) if item.job_id else None
        if expected is None:
            assert (r["status"], r["file"]) == ("failed", None)
            assert r["error_kind"] in ("failed", "missing", "no_job")
        else:
            assert r["status"] == "ok"
            assert (root / r["file"]).read_bytes().decode("utf-8") == expected
            assert r["bytes"] == len(expected.encode())
    return rows


async def test_files_with_hostile_names(tmp_path: Path) -> None:
    root = tmp_path / "out"
    async with Simulator(jobs=[HOSTILE]) as sim:
        res = await cli("items", "download", "--job-id", HOSTILE.job_id, "-o", str(root), sim=sim)
        rows = check_directory(sim, HOSTILE.job_id, root)
    failed = sum(r["status"] == "failed" for r in rows)
    assert failed > 0
    assert res.code == 1  # some items have no result: the index says which
    assert f"{failed:,} items have no result" in res.err
    assert names_in(tmp_path) == ["out"]  # nothing escaped
    names = {r["item_name"] for r in rows}
    assert "../../etc/passwd" in names or "/etc/shadow" in names


async def test_every_result_written_exits_0_and_shows_progress(tmp_path: Path) -> None:
    root = tmp_path / "out"
    err = TtyStringIO()
    async with Simulator(jobs=[CLEAN]) as sim:
        args = ["items", "download", "--job-id", CLEAN.job_id, "-o", str(root)]
        res = await cli(*args, "--concurrency", "16", sim=sim, stderr=err)
        rows = check_directory(sim, CLEAN.job_id, root)
    assert res.code == 0, res.err
    assert all(r["status"] == "ok" for r in rows)
    assert "downloading results" in res.err  # a progress line on a terminal
    assert f"downloaded {len(rows):,} of {len(rows):,} results" in res.err


@pytest.mark.parametrize("kind", ["text", "json"])
async def test_jsonl_format(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "results.jsonl"
    async with Simulator(jobs=[HOSTILE]) as sim:
        args = ["items", "download", "--job-id", HOSTILE.job_id, "--format", "jsonl"]
        res = await cli(*args, "--result", kind, "-o", str(out), sim=sim)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["item_id"] for r in rows] == sim.item_ids(HOSTILE.job_id, "completed")
        for r, item in zip(rows, sim.items(HOSTILE.job_id, "completed"), strict=True):
            assert r["item_name"] == item.item_name
            body = sim.parse_result(item.job_id or "", kind)
            if body is None:
                assert (r["status"], r["result"]) == ("failed", None)
            else:
                wire = msgspec.json.decode(body)
                assert r["result"] == wire["pages" if kind == "json" else kind]
    assert res.code == 1
    assert not out.with_name(out.name + ".aiobatch-state.json").exists()


async def test_classify_job(tmp_path: Path) -> None:
    job = SimJob(job_id="bjb-cls", total_items=40, job_type="classify")
    root = tmp_path / "classes"
    async with Simulator(jobs=[job]) as sim:
        await cli("items", "download", "--job-id", job.job_id, "-o", str(root), sim=sim)
    ok = [r for r in index(root) if r["status"] == "ok"]
    assert ok
    for r in ok:
        assert r["file"].endswith(".json")
        assert json.loads((root / r["file"]).read_text())[0]["result"]["type"]


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
async def test_resume_after_an_interruption(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("out" if fmt == "files" else "out.jsonl")
    gate = Gate(allow=40)
    faults = Faults(latency_ms=1)
    async with Simulator(jobs=[HOSTILE], faults=faults, sleep=gate) as sim:
        args = ["items", "download", "--job-id", HOSTILE.job_id, "--format", fmt, "-o", str(out)]
        task = asyncio.create_task(cli(*args, "--page-size", "20", "--concurrency", "4", sim=sim))
        await wait_for(lambda: gate.blocked.is_set())
        await asyncio.sleep(0.05)
        task.cancel()  # Ctrl-C / a kill, mid-download
        with pytest.raises(asyncio.CancelledError):
            await task
        state = out / STATE_NAME if fmt == "files" else Path(f"{out}.aiobatch-state.json")
        assert state.exists()
        done = json.loads(state.read_text())["items"]
        assert 0 < done < sim.count(HOSTILE.job_id, "completed")
        if fmt == "files":
            assert not any(p.name.startswith(".aiobatch-partial") for p in out.iterdir())
            assert len(index(out)) == done
        else:
            assert len(out.read_text().splitlines()) == done
        gate.release()
        sim.reset_stats()
        res = await cli(*args, "--resume", sim=sim)
        fetched = [r for r in sim.stats.log if "/result/" in r.path]
        assert len(fetched) <= sim.count(HOSTILE.job_id, "completed") - done + 8
        if fmt == "files":
            check_directory(sim, HOSTILE.job_id, out)
        else:
            ids = [json.loads(line)["item_id"] for line in out.read_text().splitlines()]
            assert ids == sim.item_ids(HOSTILE.job_id, "completed")
    assert res.code == 1
    assert "resuming" in res.err
    assert not state.exists()


async def test_401_stops_the_run_with_exit_1(tmp_path: Path) -> None:
    root = tmp_path / "out"
    faults = Faults(server_error=Trigger(after=10, every=1, on="parse_result"), error_status=401)
    async with Simulator(jobs=[CLEAN], faults=faults) as sim:
        res = await cli("items", "download", "--job-id", CLEAN.job_id, "-o", str(root), sim=sim)
    assert res.code == 1
    assert "authentication failed" in res.err
    # A permanent failure of a new download leaves nothing to resume (#24 case 4).
    assert "--resume" not in res.err
    assert not root.exists()


async def test_usage_errors(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    (root / "mine.txt").write_text("keep")
    async with Simulator(jobs=[CLEAN]) as sim:
        base = ["items", "download", "--job-id", CLEAN.job_id]
        res = await cli(*base, "-o", str(root), sim=sim)
        assert res.code == 2
        assert "not empty" in res.err
        res = await cli(*base, "-o", str(root / "mine.txt"), sim=sim)
        assert res.code == 2
        res = await cli(*base, "-o", str(root), "--concurrency", "0", sim=sim)
        assert res.code == 2
        # an interrupted download must be resumed with the same options
        (root / STATE_NAME).write_text(
            json.dumps(
                {
                    "job_id": CLEAN.job_id, "status": "completed", "result": "text",
                    "format": "files", "organization_id": None, "project_id": None,
                    "filter_mode": "", "next_offset": 0, "items": 0, "ok": 0, "failed": 0,
                    "bytes": 0, "length": 0, "version": 1,
                }
            )
        )  # fmt: skip
        res = await cli(*base, "-o", str(root), "--resume", sim=sim)
        assert res.code == 2
        assert "result='text'" in res.err
        assert (root / "mine.txt").read_text() == "keep"


def test_safe_name() -> None:
    used: set[str] = set()
    assert safe_name("a/b/c.pdf", "itm_1", ".md", used) == "a_b_c.pdf.md"
    assert safe_name("A/B/C.PDF", "itm_2", ".md", used) == "A_B_C.PDF~itm_2.md"
    assert safe_name("../../etc/passwd", "itm_3", ".md", used) == "_._etc_passwd.md"
    assert safe_name("..", "itm_4", ".md", used) == "itm_4.md"
    assert safe_name("", "itm_5", ".md", used) == "itm_5.md"
    assert safe_name("/abs/x", "itm_6", ".md", used) == "_abs_x.md"
    assert safe_name("nul\x00\x1b[2J", "itm_7", ".md", used) == "nul__[2J.md"
    assert safe_name("CON", "itm_8", ".md", used) == "_CON.md"
    long = safe_name("é" * 300, "itm_9", ".md", used)
    assert len(long.encode()) <= 160
    assert long.startswith("é")
    assert safe_name("a/b/c.pdf", "itm_1", ".md", used) == "a_b_c.pdf~itm_1.md"
    twice = safe_name("a/b/c.pdf", "itm_1", ".md", used)  # even the suffixed name is taken
    assert twice == "a_b_c.pdf~itm_1~2.md"
    assert os.sep not in "".join(used)


_MAIN = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from aiobatch.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _env_for_child() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_")}
    env["PYTHONWARNINGS"] = "error"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
async def test_a_killed_download_resumes(tmp_path: Path, sig: signal.Signals) -> None:
    root = tmp_path / "out"
    gate = Gate(allow=30)
    async with Simulator(jobs=[HOSTILE], faults=Faults(latency_ms=0.001), sleep=gate) as sim:
        assert sim.api_key is not None
        argv = ["items", "download", "--job-id", HOSTILE.job_id, "-o", str(root)]
        argv += ["--page-size", "20", "--concurrency", "2"]
        conn = ["--base-url", sim.base_url, "--api-key", sim.api_key]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _MAIN,
            *argv,
            *conn,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env_for_child(),
        )
        await asyncio.wait_for(gate.blocked.wait(), 30)
        await asyncio.sleep(0.1)
        proc.send_signal(sig)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        gate.release()
        if sig == signal.SIGINT:
            assert proc.returncode == 130
            assert "--resume" in stderr.decode()
        else:
            assert proc.returncode == -signal.SIGKILL
        done = len(index(root))
        assert 0 < done < sim.count(HOSTILE.job_id, "completed")
        res = await cli(*argv, "--resume", sim=sim)
        assert res.code == 1  # the simulator's failing share
        check_directory(sim, HOSTILE.job_id, root)

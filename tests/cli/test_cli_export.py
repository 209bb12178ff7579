"""``aiobatch items export``: formats, round trips, and resuming interrupted exports."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cli_support import Gate, clear_env, cli, conn, wait_for

from aiobatch.cli import run
from aiobatch.testing import Faults, SimClock, SimJob, Simulator, Trigger

JOB = "bjb-cli-export"
N = 3000
STATE = ".aiobatch-state.json"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[SimJob(job_id=JOB, total_items=N, seed=5)]) as s:
        yield s


def jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["item_id"] for line in path.read_text().splitlines()]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def csv_ids(path: Path) -> list[str]:
    return [row["item_id"] for row in csv_rows(path)]


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock a running export holds on its output."""
    import fcntl

    with open(path, "ab") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


def state_of(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(out.with_name(out.name + STATE).read_text())
    return data


def checkpoint_of(state: dict[str, object]) -> dict[str, object]:
    """The resume position a state file holds: a ``Checkpoint.to_json()`` object."""
    cp = state["checkpoint"]
    assert isinstance(cp, dict)
    return cp


def offset_of(state: dict[str, object]) -> int:
    offset = checkpoint_of(state)["offset"]
    assert isinstance(offset, int)
    return offset


def export(out: Path, *extra: str) -> list[str]:
    return ["items", "export", "--job-id", JOB, "-o", str(out), "--page-size", "250", *extra]


# --- round trips ----------------------------------------------------------------


async def test_jsonl_round_trip(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "failed.jsonl"
    r = await cli(*export(out, "--status", "failed"), sim=sim)
    assert r.code == 0, r.err
    assert jsonl_ids(out) == sim.item_ids(JOB, "failed")
    assert not out.with_name(out.name + STATE).exists()  # removed once complete
    assert r.out == ""  # the data went to the file
    assert f"exported {sim.count(JOB, 'failed')} items" in r.err


async def test_csv_round_trip(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "items.csv"
    r = await cli(*export(out), sim=sim)
    assert r.code == 0, r.err
    rows = csv_rows(out)
    truth = list(sim.items(JOB))
    assert [row["item_id"] for row in rows] == [i.item_id for i in truth]
    assert [row["skip_reason"] for row in rows] == [i.skip_reason or "" for i in truth]


async def test_parquet_round_trip(sim: Simulator, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "items.parquet"
    r = await cli(*export(out, "--status", "completed"), sim=sim)
    assert r.code == 0, r.err
    table = pq.read_table(out)
    truth = list(sim.items(JOB, "completed"))
    assert table.column("item_id").to_pylist() == [i.item_id for i in truth]
    assert table.column("completed_at").to_pylist() == [i.completed_at for i in truth]
    assert not (tmp_path / "items.parquet.partial").exists()


async def test_format_option_beats_the_extension(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "items.txt"
    r = await cli(*export(out, "--format", "csv", "--status", "skipped"), sim=sim)
    assert r.code == 0, r.err
    assert csv_ids(out) == sim.item_ids(JOB, "skipped")


# --- resuming ---------------------------------------------------------------------


def fail_at(offset: int) -> Faults:
    """The page at ``offset`` fails (503) until the faults are replaced."""
    return Faults(server_error=Trigger(offsets={offset: 1000}))


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
async def test_resume_after_a_failed_page(sim: Simulator, tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"items.{fmt}"
    sim.faults = fail_at(1500)
    r = await cli(*export(out, "--max-retries", "0"), sim=sim)
    assert r.code == 1
    assert "503" in r.err
    assert "--resume" in r.err
    state = state_of(out)
    assert (offset_of(state), state["rows"]) == (1500, 1500)
    sim.faults = Faults()
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 0, r.err
    if fmt == "jsonl":
        ids = jsonl_ids(out)
    elif fmt == "csv":
        ids = csv_ids(out)
    else:
        ids = pytest.importorskip("pyarrow.parquet").read_table(out).column("item_id").to_pylist()
    assert ids == sim.item_ids(JOB)
    # the second run fetched only what was missing
    offsets = [int(q.query.get("offset", 0)) for q in sim.stats.log if q.path.endswith("/items")]
    assert offsets.count(0) == 1


async def test_resume_repairs_a_half_written_line(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "failed.jsonl"
    sim.faults = fail_at(2000)
    # Client-side filtering: offsets count every item, so the failure at 2000 is hit.
    flt = ("--status", "failed", "--filter-mode", "client")
    r = await cli(*export(out, *flt, "--max-retries", "0"), sim=sim)
    assert r.code == 1
    before = jsonl_ids(out)
    # A kill mid-write: a whole page written after the checkpoint, then half a line.
    page = [json.dumps({"item_id": i.item_id}) + "\n" for i in sim.items(JOB, "failed", limit=3)]
    append(out, "".join(page) + '{"item_id": "itm_half')
    sim.faults = Faults()
    r = await cli(*export(out, *flt, "--resume"), sim=sim)
    assert r.code == 0, r.err
    ids = jsonl_ids(out)
    assert ids == sim.item_ids(JOB, "failed")
    assert ids[: len(before)] == before


async def test_resume_after_cancellation_mid_scan(sim: Simulator, tmp_path: Path) -> None:
    """Ctrl-C (cancellation) between pages leaves a valid, resumable file."""
    gate = Gate(allow=4)  # the 5th request hangs: a scan stopped at a known page
    sim.sleep = gate
    sim.faults = Faults(latency_ms=0.001)
    out = tmp_path / "items.jsonl"
    task = asyncio.create_task(run([*export(out, "--concurrency", "1"), *conn(sim)]))
    await asyncio.wait_for(gate.blocked.wait(), 5)
    await wait_for(lambda: state_of(out)["rows"] == 1000)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.release()
    assert jsonl_ids(out) == sim.item_ids(JOB)[:1000]
    assert offset_of(state_of(out)) == 1000
    sim.faults = Faults()
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 0, r.err
    assert jsonl_ids(out) == sim.item_ids(JOB)
    assert "1,000 items kept" in r.err


async def test_resume_of_a_running_job_keeps_client_side_offsets(tmp_path: Path) -> None:
    """A status filter on a running job is applied locally and the offsets count
    every item: the resumed scan must keep that mode although the job has
    finished meanwhile (where "auto" would now filter on the server)."""
    job = SimJob(job_id=JOB, total_items=N, seed=5, running=True, rate=100.0)
    async with Simulator(jobs=[job], clock=SimClock.frozen_at()) as sim:
        sim.advance(20.0)  # ~2000 items done, the first 1000 final
        assert not sim.job(JOB).job.status.terminal
        out = tmp_path / "failed.jsonl"
        sim.faults = fail_at(1000)
        r = await cli(*export(out, "--status", "failed", "--max-retries", "0"), sim=sim)
        assert r.code == 1
        state = state_of(out)
        assert checkpoint_of(state)["filter_mode"] == "client"
        assert offset_of(state) == 1000  # in the coordinates of all items
        sim.advance(60.0)
        assert sim.job(JOB).job.status.terminal
        sim.faults = Faults()
        r = await cli(
            *export(out, "--status", "failed", "--resume", "--filter-mode", "server"), sim=sim
        )
        assert r.code == 2
        assert "cannot resume with --filter-mode server" in r.err
        r = await cli(*export(out, "--status", "failed", "--resume"), sim=sim)
        assert r.code == 0, r.err
        assert jsonl_ids(out) == sim.item_ids(JOB, "failed")


async def test_resume_refuses_a_different_export(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    sim.faults = fail_at(500)
    assert (await cli(*export(out, "--max-retries", "0"), sim=sim)).code == 1
    sim.faults = Faults()
    for extra, field in [
        (["--status", "failed"], "status"),
        (["--format", "csv"], "format"),
    ]:
        r = await cli(*export(out, "--resume", *extra), sim=sim)
        assert r.code == 2
        assert f"has {field}=" in r.err
    r = await cli("items", "export", "--job-id", "bjb-other", "-o", str(out), "--resume", sim=sim)
    assert r.code == 2
    assert "job_id=" in r.err
    # without --resume an interrupted export is not silently overwritten
    r = await cli(*export(out), sim=sim)
    assert r.code == 2
    assert "--resume" in r.err
    assert "--force" in r.err
    r = await cli(*export(out, "--force"), sim=sim)
    assert r.code == 0
    assert jsonl_ids(out) == sim.item_ids(JOB)


async def test_resume_with_nothing_to_resume(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 0
    assert "starting a new export" in r.err
    assert jsonl_ids(out) == sim.item_ids(JOB)
    r = await cli(*export(out, "--resume"), sim=sim)  # finished: no state left
    assert r.code == 2
    assert "no state file" in r.err


async def test_resume_refuses_a_file_shorter_than_its_checkpoint(
    sim: Simulator, tmp_path: Path
) -> None:
    out = tmp_path / "items.jsonl"
    sim.faults = fail_at(1000)
    assert (await cli(*export(out, "--max-retries", "0"), sim=sim)).code == 1
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    sim.faults = Faults()
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 1
    assert "does not match its state file" in r.err


async def test_two_exports_cannot_write_one_file(sim: Simulator, tmp_path: Path) -> None:
    pytest.importorskip("fcntl")
    out = tmp_path / "items.jsonl"
    with locked(out):
        r = await cli(*export(out, "--force"), sim=sim)  # --force does not override the lock
    assert r.code == 2
    assert "another aiobatch export" in r.err


async def test_export_without_key_touches_no_file(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    r = await cli("items", "export", "--job-id", JOB, "-o", str(out))
    assert r.code == 2
    assert "no API key" in r.err
    assert os.listdir(tmp_path) == []


async def test_unwritable_output_is_one_line(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "items.jsonl"
    r = await cli(*export(out), sim=sim)
    assert r.code == 1
    assert r.err.strip() == f"aiobatch: error: {out}: No such file or directory"


async def test_export_to_stdout_is_refused(sim: Simulator) -> None:
    r = await cli("items", "export", "--job-id", JOB, "-o", "-", sim=sim)
    assert r.code == 2
    assert "items list" in r.err


async def test_parquet_hard_kill_keeps_the_last_clean_file(sim: Simulator, tmp_path: Path) -> None:
    """After SIGKILL a Parquet export leaves a garbage ``.partial`` beside the last
    complete file; resume starts from the last clean checkpoint."""
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "items.parquet"
    sim.faults = fail_at(1000)
    assert (await cli(*export(out, "--max-retries", "0"), sim=sim)).code == 1
    assert pq.read_table(out).num_rows == 1000
    append(out.with_name(out.name + ".partial"), "PAR1 half a file")  # the killed run
    sim.faults = Faults()
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 0, r.err
    assert pq.read_table(out).column("item_id").to_pylist() == sim.item_ids(JOB)


# --- never overwrite, never keep what cannot be resumed ------------------------------


async def test_a_finished_export_is_not_overwritten(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "failed.jsonl"
    assert (await cli(*export(out, "--status", "failed"), sim=sim)).code == 0
    before = out.read_bytes()
    for fmt in ([], ["--format", "csv"]):
        r = await cli(*export(out, *fmt), sim=sim)
        assert r.code == 2
        assert r.err == f"aiobatch: error: {out} already exists: add --force to overwrite it\n"
        assert out.read_bytes() == before
    r = await cli(*export(out, "--force"), sim=sim)
    assert r.code == 0, r.err
    assert jsonl_ids(out) == sim.item_ids(JOB)


async def test_any_existing_file_is_not_overwritten(sim: Simulator, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    for name in ("notes.txt", "items.parquet", "empty.csv"):
        out = tmp_path / name
        out.write_text("keep me\n" if name != "empty.csv" else "")
        r = await cli(*export(out), sim=sim)
        assert r.code == 2
        assert f"{out} already exists" in r.err
        assert "--force" in r.err
        assert out.read_text() == ("keep me\n" if name != "empty.csv" else "")
    assert sorted(os.listdir(tmp_path)) == ["empty.csv", "items.parquet", "notes.txt"]


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--job-id", "bjb-missing"], 1, "job bjb-missing not found"),
        (["--x-sim-422"], 2, "the API rejected the request: "),
        (["--api-key", "wrong-key"], 1, "authentication failed: check --api-key"),
    ],
)
@pytest.mark.parametrize("name", ["items.jsonl", "items.csv", "items.parquet"])
async def test_a_permanent_failure_leaves_nothing_to_resume(
    sim: Simulator, tmp_path: Path, extra: list[str], code: int, message: str, name: str
) -> None:
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    out = tmp_path / name
    if extra == ["--x-sim-422"]:
        # A 422 the scan cannot fix (a refused page size it learns and goes on).
        extra = []
        sim.faults = Faults(server_error=Trigger.always(), error_status=422)
    argv = [*export(out), *extra, *conn(sim)]  # the last --job-id / key wins
    if "--api-key" in extra:
        argv = [*export(out), "--base-url", sim.base_url, *extra]
    stderr = io.StringIO()
    code_ = await run(argv, stdout=io.StringIO(), stderr=stderr)
    err = stderr.getvalue()
    assert code_ == code, err
    assert err.startswith(f"aiobatch: error: {message}")
    assert len(err.splitlines()) == 1
    assert "--resume" not in err
    assert os.listdir(tmp_path) == []  # no output, no state, no .partial
    sim.faults = Faults()
    # fixed, the same command runs without --force
    r = await cli(*export(out), sim=sim)
    assert r.code == 0, r.err


async def test_a_permanent_failure_on_resume_keeps_the_checkpoint(
    sim: Simulator, tmp_path: Path
) -> None:
    out = tmp_path / "items.jsonl"
    sim.faults = fail_at(1000)
    assert (await cli(*export(out, "--max-retries", "0"), sim=sim)).code == 1
    sim.faults = Faults()
    argv = [*export(out, "--resume"), "--base-url", sim.base_url, "--api-key", "expired"]
    stderr = io.StringIO()
    assert await run(argv, stdout=io.StringIO(), stderr=stderr) == 1
    assert "authentication failed" in stderr.getvalue()
    assert state_of(out)["rows"] == 1000  # the key was wrong, not the export
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 0, r.err
    assert jsonl_ids(out) == sim.item_ids(JOB)


async def test_a_transient_failure_before_the_first_page_is_resumable(
    sim: Simulator, tmp_path: Path
) -> None:
    out = tmp_path / "items.jsonl"
    sim.faults = fail_at(0)
    r = await cli(*export(out, "--max-retries", "0"), sim=sim)
    assert r.code == 1
    assert "--resume" in r.err
    assert state_of(out)["rows"] == 0


# --- a hand-edited state file -------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ({"bytes": -1}, "`$.bytes`"),
        ({"checkpoint": "250"}, "`$.checkpoint`"),
        ({"rows": 1.5}, "`$.rows`"),
        ({"format": "xlsx"}, "`$.format`"),
        ({"rows": None}, "`$.rows`"),
        ({"rows": ...}, "missing required field `rows`"),
        ({"job_id": ...}, "missing required field `job_id`"),
    ],
)
async def test_an_edited_state_file_names_the_field(
    sim: Simulator, tmp_path: Path, edit: dict[str, object], needle: str
) -> None:
    out = tmp_path / "items.jsonl"
    sim.faults = fail_at(500)
    assert (await cli(*export(out, "--max-retries", "0"), sim=sim)).code == 1
    state_path = out.with_name(out.name + STATE)
    doc = state_of(out)
    for key, value in edit.items():
        if value is ...:
            del doc[key]
        else:
            doc[key] = value
    state_path.write_text(json.dumps(doc))
    sim.faults = Faults()
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 2
    assert r.err.startswith(f"aiobatch: error: cannot resume: invalid state file {state_path}: ")
    assert needle in r.err
    assert len(r.err.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "needle"), [("{not json", "is not valid JSON"), ("[1, 2]", "is not a JSON object")]
)
async def test_a_state_file_that_is_not_a_state(
    sim: Simulator, tmp_path: Path, text: str, needle: str
) -> None:
    out = tmp_path / "items.jsonl"
    out.write_text("")
    state_path = out.with_name(out.name + STATE)
    state_path.write_text(text)
    r = await cli(*export(out, "--resume"), sim=sim)
    assert r.code == 2
    assert r.err == (
        f"aiobatch: error: cannot resume: state file {state_path} {needle}; "
        "use --force to start over\n"
    )


# --- outputs that are not regular files --------------------------------------------


def has_state(output: str) -> bool:
    return Path(output + STATE).exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
async def test_a_full_device_is_named(sim: Simulator) -> None:
    r = await cli("items", "export", "--job-id", JOB, "-o", "/dev/full", sim=sim)
    assert r.code == 1
    assert r.err == "aiobatch: error: cannot write /dev/full: No space left on device\n"
    assert not has_state("/dev/full")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
async def test_a_device_is_written_without_state(sim: Simulator) -> None:
    r = await cli("items", "export", "--job-id", JOB, "-o", "/dev/null", sim=sim)
    assert r.code == 0, r.err
    assert f"exported {N:,} items to /dev/null" in r.err
    assert not has_state("/dev/null")
    r = await cli("items", "export", "--job-id", JOB, "-o", "/dev/null", "--resume", sim=sim)
    assert (r.code, r.err) == (
        2,
        "aiobatch: error: cannot resume: /dev/null is not a regular file\n",
    )


async def test_a_page_size_above_the_server_maximum_is_learned(
    sim: Simulator, tmp_path: Path
) -> None:
    # The lossless issue, case 7: the 422 naming `limit` lowers the page size.
    out = tmp_path / "items.jsonl"
    r = await cli(*export(out), "--page-size", "5000", sim=sim)
    assert r.code == 0, r.err
    assert len(out.read_text().splitlines()) == len(sim.item_ids(JOB))

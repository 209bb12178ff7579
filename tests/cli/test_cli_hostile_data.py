"""Server text is data: never rich markup, never terminal control, never a formula.

The simulator draws item names and error messages from fixed tables; these
tests swap in hostile ones (brackets, escape sequences, bidi overrides,
spreadsheet formulas) before the simulator builds its jobs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import TtyStringIO, clear_env, cli

from aiobatch.cli import _output
from aiobatch.testing import SimJob, Simulator
from aiobatch.testing import _data as sim_data

JOB = "bjb-cli-hostile"
N = 600
BRACKETS = "cannot read [/data/in/scan 7.pdf]"
STYLED = "[red]not red[/red]"
CLEAR = "\x1b[2J\x1b[H screen cleared"
TITLE = "\x1b]0;pwned\x07 title set"
BIDI = "abc\u202edcba.exe"
FORMULA = '=HYPERLINK("http://evil","x")'
#: The simulator's six messages: it uses those at 0, 1, 3 and 5.
ERRORS = (BRACKETS, FORMULA, "unused", f"{STYLED} {BIDI}", "unused", f"{CLEAR} {TITLE}")
USED = {ERRORS[k] for k in (0, 1, 3, 5)}
#: Every item name starts with its directory: a formula and an escape sequence.
DIRS = ("-2+3 \x1b[31mred\x1b[0m",)
JOB_ERROR = "+SUM(1) [/mnt/inbox/a.pdf] \x1b]0;t\x07"
UNSAFE = ("\x1b", "\x07", "\u202e", "\x9b", "\x7f")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.setattr(sim_data, "_ERRORS", ERRORS)
    monkeypatch.setattr(sim_data, "_DIRS", DIRS)
    mix = {"completed": 0.5, "failed": 0.5}
    jobs = [SimJob(job_id=JOB, total_items=N, seed=1, mix=mix, error_message=JOB_ERROR)]
    async with Simulator(jobs=jobs) as s:
        yield s


def assert_terminal_safe(text: str) -> None:
    for c in UNSAFE:
        assert c not in text, (c, text)


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --- the helpers ----------------------------------------------------------------


def test_terminal_safe_shows_control_characters() -> None:
    assert _output.terminal_safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert _output.terminal_safe("\x00\t\n\r\x7f\x85\x9b") == "\\x00\\x09\\x0a\\x0d\\x7f\\x85\\x9b"
    for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        assert _output.terminal_safe(chr(code)) == f"\\u{code:04x}"
    plain = "Échec — 文字化け [red] =1 \u200b\u2029"
    assert _output.terminal_safe(plain) == plain
    assert _output.terminal_safe(_output.terminal_safe(CLEAR)) == _output.terminal_safe(CLEAR)


def test_csv_cell_guards_only_server_strings() -> None:
    for text in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]:
        assert _output.csv_cell(text) == "'" + text
        assert _output.csv_cell(text, raw=True) == text
    for value in [-5, 0, 3, 2.5, None, "", "ok", "itm_1", "2024-09-01T08:00:00Z"]:
        assert _output.csv_cell(value) == value


# --- markup -----------------------------------------------------------------------


async def test_summary_prints_brackets_as_text(sim: Simulator) -> None:
    r = await cli("items", "summary", "--job-id", JOB, "--top", "6", sim=sim)
    assert r.code == 0, r.err
    assert BRACKETS in r.out
    assert STYLED in r.out  # neither parsed nor dropped
    assert_terminal_safe(r.out)
    assert "\\x1b[2J\\x1b[H screen cleared" in r.out
    assert "\\x1b]0;pwned\\x07 title set" in r.out
    assert "abc\\u202edcba.exe" in r.out


async def test_jobs_status_prints_brackets_as_text(sim: Simulator) -> None:
    r = await cli("jobs", "status", "--job-id", JOB, sim=sim)
    assert r.code == 0, r.err
    assert "+SUM(1) [/mnt/inbox/a.pdf] \\x1b]0;t\\x07" in r.out
    assert_terminal_safe(r.out)


async def test_progress_label_is_not_markup(sim: Simulator) -> None:
    job = "[bold]bjb-\u202e-x"
    sim.add_job(SimJob(job_id=job, total_items=10))
    err = TtyStringIO()
    r = await cli("jobs", "watch", "--job-id", job, "--interval", "0.01", sim=sim, stderr=err)
    assert r.code == 0, r.err
    assert "job [bold]bjb-\\u202e-x" in r.err
    assert "\u202e" not in r.err + r.out


# --- control characters -------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["items", "list", "--format", "table"],
        ["items", "list", "--format", "table", "--limit", "50"],
        ["items", "summary"],
        ["jobs", "status"],
        ["jobs", "watch"],
    ],
)
async def test_views_for_people_neutralise_control_characters(
    sim: Simulator, argv: list[str]
) -> None:
    r = await cli(*argv, "--job-id", JOB, sim=sim)
    assert r.code == 0, r.err
    assert_terminal_safe(r.out + r.err)
    assert "\\x1b" in r.out


async def test_error_lines_neutralise_control_characters(sim: Simulator) -> None:
    r = await cli("jobs", "status", "--job-id", "bjb-\u202e\x9b2J", sim=sim)
    assert r.code == 1
    assert r.err == "aiobatch: error: job bjb-\\u202e\\x9b2J not found\n"
    r = await cli("items", "list", "--job-id", "x", "stray \x1b]0;t\x07", sim=sim)
    assert r.code == 2
    assert "unrecognized arguments" in r.err
    assert_terminal_safe(r.err)
    assert "stray \\x1b]0;t\\x07" in r.err


async def test_data_formats_keep_server_text_exact(sim: Simulator, tmp_path: Path) -> None:
    truth = {i.item_id: i for i in sim.items(JOB)}
    r = await cli("items", "list", "--job-id", JOB, sim=sim)
    assert r.code == 0
    for d in r.jsonl():
        item = truth[d["item_id"]]
        assert d["item_name"] == item.item_name
        assert d.get("error_message") == item.error_message
    assert {d.get("error_message") for d in r.jsonl()} >= USED
    r = await cli("items", "list", "--job-id", JOB, "--format", "json", sim=sim)
    assert [d["item_name"] for d in json.loads(r.out)] == [i.item_name for i in truth.values()]
    r = await cli("jobs", "status", "--job-id", JOB, "--format", "json", sim=sim)
    assert json.loads(r.out)["job"]["error_message"] == JOB_ERROR
    out = tmp_path / "items.csv"
    r = await cli("items", "export", "--job-id", JOB, "-o", str(out), "--csv-raw", sim=sim)
    assert r.code == 0, r.err
    rows = read_csv(out.read_bytes().decode())
    assert [row["item_name"] for row in rows] == [i.item_name for i in truth.values()]


# --- CSV formulas -------------------------------------------------------------------


async def test_csv_list_guards_formulas(sim: Simulator) -> None:
    truth = list(sim.items(JOB))
    r = await cli("items", "list", "--job-id", JOB, "--format", "csv", sim=sim)
    assert r.code == 0
    rows = read_csv(r.out)
    assert [row["item_name"] for row in rows] == ["'" + i.item_name for i in truth]
    errors = {row["error_message"] for row in rows}
    assert "'" + FORMULA in errors
    assert FORMULA not in errors
    assert BRACKETS in errors  # not a formula: unchanged
    assert [row["item_id"] for row in rows] == [i.item_id for i in truth]
    assert all(not row["completed_at"].startswith("'") for row in rows)
    r = await cli("items", "list", "--job-id", JOB, "--format", "csv", "--csv-raw", sim=sim)
    raw = read_csv(r.out)
    assert [row["item_name"] for row in raw] == [i.item_name for i in truth]
    assert FORMULA in {row["error_message"] for row in raw}


async def test_csv_export_guards_formulas(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "failed.csv"
    r = await cli("items", "export", "--job-id", JOB, "--status", "failed", "-o", str(out), sim=sim)
    assert r.code == 0, r.err
    rows = read_csv(out.read_bytes().decode())
    failed = list(sim.items(JOB, "failed"))
    assert [row["item_name"] for row in rows] == ["'" + i.item_name for i in failed]
    assert "'" + FORMULA in {row["error_message"] for row in rows}


async def test_csv_export_resume_keeps_the_csv_mode(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "items.csv"
    state = tmp_path / "items.csv.aiobatch-state.json"
    state.write_text(
        json.dumps(
            {
                "job_id": JOB,
                "status": None,
                "format": "csv",
                "organization_id": None,
                "project_id": None,
                "filter_mode": "server",
                "next_offset": 0,
                "rows": 0,
                "bytes": 0,
                "version": 1,
            }
        )
    )
    out.write_text("")
    r = await cli(
        "items", "export", "--job-id", JOB, "-o", str(out), "--resume", "--csv-raw", sim=sim
    )
    assert r.code == 2
    assert "csv_raw" in r.err


async def test_jobs_csv_guards_text_but_not_numbers(sim: Simulator) -> None:
    r = await cli("jobs", "list", "--format", "csv", sim=sim)
    assert r.code == 0
    (row,) = read_csv(r.out)
    assert row["error_message"] == "'" + JOB_ERROR
    assert row["total_items"] == str(N)
    assert row["failed_items"] == str(sim.count(JOB, "failed"))
    r = await cli("jobs", "list", "--format", "csv", "--csv-raw", sim=sim)
    (row,) = read_csv(r.out)
    assert row["error_message"] == JOB_ERROR

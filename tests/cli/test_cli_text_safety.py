"""What the command prints is true and safe (issue 24, cases 9-11, 13 and the
Windows names): no server text adds a line, a row or a terminal control, and
the API key is never shown, whatever the server echoes."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from _servers import serve
from aiohttp import web
from cli_support import clear_env, cli

from aiobatch import BatchClient, JobFailedError
from aiobatch.cli._download import safe_name
from aiobatch.cli._output import csv_cell, terminal_safe
from aiobatch.cli._writers import Csv
from aiobatch.testing import SimJob, Simulator

KEY = "llx-e24-secret-key-0123456789"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


# --- 9: CSV rows --------------------------------------------------------------


def _rows_as_a_spreadsheet_reads_them(data: bytes) -> list[list[str]]:
    # Universal newlines: a bare CR ends a line, as in spreadsheets.
    return list(csv.reader(io.StringIO(data.decode(), newline=None)))


def test_a_cr_inside_a_cell_cannot_start_a_row() -> None:
    codec = Csv(["error", "name"])
    data = codec.encode([{"error": "ok\r=cmd|' /C calc'!A0", "name": "a\nb"}])
    assert data.startswith(b'"ok\r')  # quoted: the CR stays inside the cell
    for row in _rows_as_a_spreadsheet_reads_them(codec.header() + data):
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row


def test_every_line_start_in_a_cell_is_guarded() -> None:
    assert csv_cell("ok\r=cmd") == "ok\r'=cmd"
    assert csv_cell("a\n+1\r\n@x") == "a\n'+1\r\n'@x"
    assert csv_cell("=1") == "'=1"
    assert csv_cell("plain\ntext") == "plain\ntext"
    assert csv_cell("ok\r=cmd", raw=True) == "ok\r=cmd"


# --- 10: error lines ----------------------------------------------------------


@pytest.fixture
async def hostile_detail() -> AsyncIterator[tuple[str, list[str]]]:
    details: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"detail": details[-1]}, status=400)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with serve(app) as url:
        yield url, details


async def test_a_server_detail_cannot_add_a_line(hostile_detail: tuple[str, list[str]]) -> None:
    url, details = hostile_detail
    details.append("bad\nSECOND LINE aiobatch: error: fake\u2028third")
    r = await cli("jobs", "status", "--job-id", "bjb-1", "--base-url", url, "--api-key", KEY)
    assert r.code == 1
    assert r.err.count("\n") == 1
    assert r.err.startswith("aiobatch: error: ")
    assert "bad\\x0aSECOND LINE" in r.err


async def test_a_huge_detail_is_cut_with_a_note(hostile_detail: tuple[str, list[str]]) -> None:
    url, details = hostile_detail
    details.append("x" * 200_000)
    r = await cli("jobs", "status", "--job-id", "bjb-1", "--base-url", url, "--api-key", KEY)
    assert r.code == 1
    assert r.err.count("\n") == 1
    assert len(r.err) < 1200
    assert "more characters not shown)" in r.err


# --- 11: the key echoed by a server -------------------------------------------


@pytest.fixture
async def echoing() -> AsyncIterator[Simulator]:
    job = SimJob(
        job_id="bjb-echo",
        total_items=10,
        mix={"failed": 1.0},
        status="failed",
        error_message=f"key {KEY} refused",
    )
    async with Simulator(jobs=[job], api_key=KEY) as s:
        yield s


async def test_jobs_wait_notes_never_show_the_key(echoing: Simulator) -> None:
    r = await cli("jobs", "wait", "--job-id", "bjb-echo", "--interval", "0.01", sim=echoing)
    assert r.code == 1
    assert "refused" in r.out + r.err
    assert KEY not in r.out + r.err


async def test_job_failed_error_never_shows_the_key(echoing: Simulator) -> None:
    async with BatchClient(KEY, base_url=echoing.base_url) as client:
        with pytest.raises(JobFailedError) as info:
            await client.jobs.wait("bjb-echo", poll_interval=0.01, raise_on_failure=True)
        status = await client.jobs.get("bjb-echo")
    assert "refused" in str(info.value)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.status)
    assert KEY not in (status.job.error_message or "")


# --- 13: bidi marks -----------------------------------------------------------


@pytest.mark.parametrize("mark", ["\u200e", "\u200f", "\u061c"])
def test_bidi_marks_are_shown_not_obeyed(mark: str) -> None:
    shown = terminal_safe(f"invoice{mark}fdp.exe")
    assert mark not in shown
    assert f"\\u{ord(mark):04x}" in shown


# --- Windows device names -----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["COM¹", "LPT²", "com³.txt", "CONIN$", "CONOUT$", "Con .pdf", "nul...", "AUX  "]
)
def test_windows_device_names_are_renamed(name: str) -> None:
    got = safe_name(name, "id-1", ".md", set())
    stem = got.split(".")[0].rstrip(" .").casefold()
    assert stem.startswith("_"), got


def test_a_device_name_as_an_id_is_renamed_too() -> None:
    assert safe_name("..", "CON", ".md", set()) == "_CON.md"


# --- 13: tables without a terminal --------------------------------------------

LONG_IDS = [f"bjb-{k:08d}-1111-2222-3333-444455556666" for k in range(3)]


async def test_tables_in_a_file_keep_whole_ids_on_one_line() -> None:
    jobs = [SimJob(job_id=i, total_items=1_000_000 + k) for k, i in enumerate(LONG_IDS)]
    async with Simulator(jobs=jobs) as sim:
        r = await cli("jobs", "list", sim=sim)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    for job_id in LONG_IDS:
        assert any(job_id in line for line in lines), r.out
    assert len(lines) == len(LONG_IDS) + 2  # the header, its rule, one line per job


# --- 12: what --format json holds ---------------------------------------------

SENT_ITEM = {
    "item_id": "itm-1",
    "item_name": "a  b\u00e9.pdf",
    "status": "completed",
    "completed_at": "2026-01-02T03:04:05.123456789Z",
    "effective_at": "2026-01-02T05:04:05+02:00",
    "error_message": None,
    "brand_new_field": {"x": 1},
}


async def test_json_output_is_what_the_help_says() -> None:
    async def page(request: web.Request) -> web.Response:
        return web.json_response({"items": [SENT_ITEM], "total_size": 1})

    app = web.Application()
    app.router.add_get("/api/v1/beta/batch-processing/bjb-1/items", page)
    async with serve(app) as url:
        r = await cli("items", "list", "--job-id", "bjb-1", "--base-url", url, "--api-key", KEY)
    assert r.code == 0, r.err
    assert r.jsonl() == [
        {
            "item_id": "itm-1",
            "item_name": "a  b\u00e9.pdf",
            "status": "completed",
            "completed_at": "2026-01-02T03:04:05.123457Z",
            "effective_at": "2026-01-02T05:04:05+02:00",
        }
    ]
    h = await cli("items", "list", "--help")
    assert "as sent by the API" not in h.out
    assert ".123456789Z: .123457Z" in h.out


@pytest.mark.parametrize("fmt", ["table", "jsonl", "csv"])
async def test_item_text_echoing_the_key_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from aiobatch.testing import _data as sim_data

    monkeypatch.setattr(sim_data, "_ERRORS", (f"bad key {KEY}",) * 6)
    job = SimJob(job_id="bjb-echo-items", total_items=30, mix={"failed": 1.0})
    async with Simulator(jobs=[job], api_key=KEY) as sim:
        r = await cli("items", "list", "--job-id", job.job_id, "--format", fmt, sim=sim)
    assert r.code == 0, r.err
    assert "bad key ***" in r.out
    assert KEY not in r.out + r.err

"""``aiobatch directories files``: every file of a directory with its display name
(table, JSON Lines, CSV), or one page with --page-token."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import pytest
from cli_support import clear_env, cli

from aiobatch import BatchClient
from aiobatch.cli._output import csv_cell
from aiobatch.testing import SimBatch, Simulator
from aiobatch.testing._batches import file_id_of
from aiobatch.testing._directories import _display_name

BATCH = SimBatch(batch_id="bat-d", files=90, source_directory_id="dir-9", hostile_names=True)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as s:
        s.batches.add(BATCH)
        yield s


async def test_every_file_as_json_lines(sim: Simulator) -> None:
    r = await cli(
        "directories",
        "files",
        "--directory-id",
        "dir-9",
        "--page-size",
        "7",
        "--format",
        "jsonl",
        sim=sim,
    )
    assert r.code == 0, r.err
    rows = r.jsonl()
    assert [row["id"] for row in rows] == [file_id_of("bat-d", i) for i in range(90)]
    assert [row["display_name"] for row in rows] == [_display_name(BATCH, i) for i in range(90)]


async def test_one_page_and_the_next_token_on_stderr(sim: Simulator) -> None:
    async with BatchClient(sim.api_key, base_url=sim.base_url) as client:
        token = (await client.directories.list_files("dir-9", page_size=10)).next_page_token
    assert token
    argv = ["directories", "files", "--directory-id", "dir-9", "--page-size", "10"]
    page = await cli(*argv, "--page-token", token, "--format", "json", sim=sim)
    assert page.code == 0, page.err
    doc = json.loads(page.out)
    assert [f["id"] for f in doc["items"]] == [file_id_of("bat-d", i) for i in range(10, 20)]
    assert f"next page: --page-token {doc['next_page_token']}" in page.err


async def test_table_and_csv_keep_hostile_names_inert(sim: Simulator) -> None:
    table = await cli("directories", "files", "--directory-id", "dir-9", sim=sim)
    assert table.code == 0
    assert "\x1b" not in table.out
    out = await cli("directories", "files", "--directory-id", "dir-9", "--format", "csv", sim=sim)
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert len(rows) == 90
    # Each cell as sent, except that a spreadsheet formula gets the guard's "'".
    assert [r["display_name"] for r in rows] == [
        csv_cell(_display_name(BATCH, i)) for i in range(90)
    ]
    assert "'-rf" in {r["display_name"] for r in rows}

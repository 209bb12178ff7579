"""``aiobatch directories files``: every file of a directory with its display name
(table, JSON Lines, CSV with the formula guard), or one page with --page-token."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import pytest
from cli_support import clear_env, cli

from aiobatch import BatchClient
from aiobatch.testing import SimBatch, Simulator
from aiobatch.testing._batches import file_id_of
from aiobatch.testing._directories import display_name_of


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as s:
        s.batches.add(SimBatch(batch_id="bat-d", files=90, source_directory_id="dir-9"))
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
    assert [row["display_name"] for row in rows] == [display_name_of(row["id"]) for row in rows]


async def test_one_page_and_the_next_token_on_stderr(sim: Simulator) -> None:
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url) as client:
        first = await client.directories.list_files("dir-9", page_size=10)
    assert first.next_page_token
    second = await cli(
        "directories",
        "files",
        "--directory-id",
        "dir-9",
        "--page-size",
        "10",
        "--page-token",
        first.next_page_token,
        "--format",
        "json",
        sim=sim,
    )
    assert second.code == 0, second.err
    assert "next page: --page-token " in second.err
    ids = [f.id for f in first.items] + [f["id"] for f in json.loads(second.out)["items"]]
    assert len(set(ids)) == 20  # the token led on, not back to the start


async def test_table_and_csv_keep_hostile_names_inert(sim: Simulator) -> None:
    table = await cli("directories", "files", "--directory-id", "dir-9", sim=sim)
    assert table.code == 0
    assert "\x1b" not in table.out
    out = await cli("directories", "files", "--directory-id", "dir-9", "--format", "csv", sim=sim)
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert len(rows) == 90
    names = {display_name_of(file_id_of("bat-d", i)) for i in range(90)}
    assert {"../../etc/passwd", '=HYPERLINK("http://x.invalid")'} <= names
    assert "\x1b[31mred\x1b[0m.pdf" in names
    assert not any(r["display_name"].startswith("=") for r in rows)  # the formula guard

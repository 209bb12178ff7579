"""``aiobatch batches ...`` against the simulator."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import pytest
from cli_support import clear_env, cli

from aiobatch import BatchClient
from aiobatch.testing import SimBatch, SimClock, Simulator

T0 = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0)) as s:
        for i in range(12):
            s.batches.add(
                SimBatch(
                    batch_id=f"bat-{i:02d}",
                    created_at=T0 - 1000 + i,
                    source_directory_id="dir-a" if i < 4 else "dir-b",
                    files=2,
                    error_every=2,
                )
            )
        s.batches.add(SimBatch(batch_id="bat-live", created_at=T0, files=50))
        yield s


async def test_list_streams_every_batch(sim: Simulator) -> None:
    r = await cli("batches", "list", "--page-size", "5", "--format", "jsonl", sim=sim)
    assert r.code == 0, r.err
    assert [d["id"] for d in r.jsonl()] == sim.batches.ids()
    assert len([q for q in sim.stats.log if q.path == "/api/v2/batches"]) == 3


async def test_list_filters_and_max_items(sim: Simulator) -> None:
    r = await cli("batches", "list", "--source-directory-id", "dir-a", "--format", "json", sim=sim)
    assert r.code == 0, r.err
    assert [d["id"] for d in json.loads(r.out)] == ["bat-03", "bat-02", "bat-01", "bat-00"]
    r = await cli("batches", "list", "--status", "PENDING", "--format", "jsonl", sim=sim)
    assert [d["id"] for d in r.jsonl()] == ["bat-live"]
    r = await cli("batches", "list", "--max-items", "3", "--format", "jsonl", sim=sim)
    assert len(r.jsonl()) == 3
    r = await cli(
        "batches",
        "list",
        "--created-at-on-or-after",
        "2027-01-15T07:43:30Z",
        "--format",
        "jsonl",
        sim=sim,
    )
    assert [d["id"] for d in r.jsonl()] == ["bat-live", "bat-11", "bat-10"]


async def test_one_page_with_a_token(sim: Simulator) -> None:
    first = await cli("batches", "list", "--page-size", "4", "--format", "json", sim=sim)
    assert first.code == 0
    r = await cli("batches", "list", "--page-size", "4", "--page-token", "", sim=sim)
    assert r.code == 2  # an empty token is not a page
    page = await cli(
        "batches", "list", "--page-size", "4", "--format", "json", "--max-items", "4", sim=sim
    )
    assert len(json.loads(page.out)) == 4
    # the page after the first 4, through the raw endpoint's token
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url) as c:
        token = (await c.batches.list(page_size=4)).next_page_token
    assert token
    r = await cli(
        "batches", "list", "--page-size", "4", "--page-token", token, "--format", "json", sim=sim
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert [d["id"] for d in doc["items"]] == sim.batches.ids()[4:8]
    assert doc["next_page_token"]
    assert "next page: --page-token " in r.err
    table = await cli("batches", "list", "--page-size", "4", "--page-token", token, sim=sim)
    assert "bat-08" in table.out


async def test_csv_flattens_the_job_config(sim: Simulator) -> None:
    r = await cli("batches", "list", "--format", "csv", "--max-items", "2", sim=sim)
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert [row["id"] for row in rows] == ["bat-live", "bat-11"]
    assert rows[0]["job_type"] == "parse_v2"
    assert rows[0]["configuration_id"] == "cfg-sim-0001"


async def test_get_with_results_and_the_table(sim: Simulator) -> None:
    r = await cli(
        "batches",
        "get",
        "--batch-id",
        "bat-01",
        "--expand",
        "results",
        "--format",
        "json",
        sim=sim,
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["status"] == "COMPLETED"
    assert [x.get("job_reference") is None for x in doc["results"]] == [False, True]
    table = await cli("batches", "get", "--batch-id", "bat-01", "--expand", "results", sim=sim)
    assert "2 (1 without a job)" in table.out
    assert "unsupported file type" in table.out


async def test_cancel_create_and_errors(sim: Simulator) -> None:
    r = await cli("batches", "cancel", "--batch-id", "bat-live", "--format", "json", sim=sim)
    assert json.loads(r.out)["status"] == "CANCELLED"
    r = await cli("batches", "cancel", "--batch-id", "bat-nope", sim=sim)
    assert (r.code, r.err.strip()) == (1, "aiobatch: error: batch bat-nope not found")
    r = await cli(
        "batches",
        "create",
        "--job-type",
        "extract_v2",
        "--configuration-id",
        "cfg-9",
        "--source-directory-id",
        "dir-9",
        "--format",
        "json",
        sim=sim,
    )
    assert r.code == 0, r.err
    made = json.loads(r.out)
    assert made["config"]["job"] == {"type": "extract_v2", "configuration_id": "cfg-9"}
    assert made["id"] in sim.batches.ids()
    # v1 spells statuses in lower case: accepted as RUNNING (issue 24, case 14).
    r = await cli("batches", "list", "--status", "running", sim=sim)
    assert r.code == 0, r.err
    r = await cli("batches", "list", "--status", "runing", sim=sim)
    assert r.code == 2
    assert "did you mean RUNNING?" in r.err


async def test_hostile_text_is_drawn_safely(sim: Simulator) -> None:
    sim.batches.add(
        SimBatch(
            batch_id="bat-\x1b[2Jevil\u202e", source_directory_id="dir-\x07", created_at=T0 + 1
        )
    )
    r = await cli("batches", "list", "--max-items", "1", sim=sim)
    assert r.code == 0, r.err
    assert "\x1b" not in r.out
    assert "\u202e" not in r.out
    assert "\\x1b[2Jevil\\u202e" in r.out

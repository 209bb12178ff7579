"""``aiobatch items list | summary | results`` against the simulator."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import pytest
from cli_support import TtyStringIO, clear_env, cli

from aiobatch.testing import SimJob, Simulator

JOB = "bjb-cli-items"
N = 2345


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[SimJob(job_id=JOB, total_items=N, seed=3)]) as s:
        yield s


def item_requests(sim: Simulator) -> list[dict[str, str]]:
    return [r.query for r in sim.stats.log if r.path.endswith("/items")]


async def test_list_streams_every_item_in_order(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "--page-size", "200", sim=sim)
    assert r.code == 0
    assert r.ids() == sim.item_ids(JOB)
    # stderr is not a terminal: stdout holds only data, stderr nothing at all
    assert r.err == ""
    assert len(item_requests(sim)) > 1


async def test_list_status_filter(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "--status", "failed", sim=sim)
    assert r.code == 0
    items = r.jsonl()
    assert [d["item_id"] for d in items] == sim.item_ids(JOB, "failed")
    assert {d["status"] for d in items} == {"failed"}


async def test_list_item_json_is_the_wire_form(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "--limit", "3", sim=sim)
    assert r.code == 0
    truth = list(sim.items(JOB, limit=3))
    from aiobatch.models import encode

    assert r.lines() == [encode(item).decode() for item in truth]


async def test_limit_offset_fetch_exactly_one_page(sim: Simulator) -> None:
    r = await cli(
        "items",
        "list",
        "--job-id",
        JOB,
        "--limit",
        "7",
        "--offset",
        "10",
        "--format",
        "json",
        sim=sim,
    )
    assert r.code == 0
    doc = json.loads(r.out)
    assert [d["item_id"] for d in doc["items"]] == sim.item_ids(JOB)[10:17]
    assert doc["total_size"] == N
    assert item_requests(sim) == [{"limit": "7", "offset": "10"}]


async def test_offset_alone_is_one_page_too(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "--offset", str(N - 5), sim=sim)
    assert r.code == 0
    assert r.ids() == sim.item_ids(JOB)[-5:]
    assert len(item_requests(sim)) == 1


async def test_list_csv_round_trip(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "--format", "csv", sim=sim)
    assert r.code == 0
    rows = list(csv.DictReader(io.StringIO(r.out)))
    truth = list(sim.items(JOB))
    assert [row["item_id"] for row in rows] == [i.item_id for i in truth]
    assert [row["status"] for row in rows] == [i.status for i in truth]
    assert [row["error_message"] for row in rows] == [i.error_message or "" for i in truth]


async def test_list_json_array(sim: Simulator) -> None:
    r = await cli(
        "items", "list", "--job-id", JOB, "--status", "skipped", "--format", "json", sim=sim
    )
    assert r.code == 0
    assert [d["item_id"] for d in json.loads(r.out)] == sim.item_ids(JOB, "skipped")


async def test_list_empty_json_array_and_table(sim: Simulator) -> None:
    sim.add_job(SimJob(job_id="bjb-empty", total_items=0))
    r = await cli("items", "list", "--job-id", "bjb-empty", "--format", "json", sim=sim)
    assert (r.code, json.loads(r.out)) == (0, [])
    r = await cli("items", "list", "--job-id", "bjb-empty", "--format", "table", sim=sim)
    assert (r.code, r.out) == (0, "(no items)\n")


async def test_list_table(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "--limit", "50", "--format", "table", sim=sim)
    assert r.code == 0
    lines = r.lines()
    assert lines[0].split()[:3] == ["ITEM", "ID", "STATUS"]
    assert len(lines) == 51
    assert lines[1].startswith(sim.item_ids(JOB)[0])


async def test_progress_bar_goes_to_stderr_only(sim: Simulator) -> None:
    err = TtyStringIO()
    r = await cli("items", "list", "--job-id", JOB, sim=sim, stderr=err)
    assert r.code == 0
    assert r.ids() == sim.item_ids(JOB)  # data untouched by the bar
    assert "items" in r.err


async def test_quiet_silences_the_progress_bar(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "-q", sim=sim, stderr=TtyStringIO())
    assert (r.code, r.err) == (0, "")


async def test_summary_json_matches_ground_truth(sim: Simulator) -> None:
    r = await cli("items", "summary", "--job-id", JOB, "--format", "json", "--top", "20", sim=sim)
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["total_items"] == N
    for status, entry in doc["statuses"].items():
        assert entry["count"] == sim.count(JOB, status)
        assert entry["percent"] == pytest.approx(100 * entry["count"] / N, abs=0.01)
    failed = list(sim.items(JOB, "failed"))
    assert sum(e["count"] for e in doc["errors"]) == len(failed)
    assert sum(e["percent"] for e in doc["errors"]) == pytest.approx(100, abs=0.1)
    skips = sum(e["count"] for e in doc["skip_reasons"])
    assert skips == sim.count(JOB, "skipped")
    counts = [e["count"] for e in doc["errors"]]
    assert counts == sorted(counts, reverse=True)


async def test_summary_table(sim: Simulator) -> None:
    r = await cli("items", "summary", "--job-id", JOB, sim=sim)
    assert r.code == 0
    assert "completed" in r.out
    assert f"{N:,}" in r.out
    assert "Top errors" in r.out
    assert "Skip reasons" in r.out


async def test_results_of_one_item(sim: Simulator) -> None:
    item_id = sim.item_ids(JOB, "completed")[0]
    r = await cli("items", "results", "--item-id", item_id, sim=sim)
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["item_id"] == item_id
    assert doc["processing_results"]
    r = await cli("items", "results", "--item-id", item_id, "--format", "table", sim=sim)
    assert r.code == 0
    assert item_id in r.out
    r = await cli("items", "results", "--item-id", item_id, "--format", "jsonl", sim=sim)
    assert r.code == 0
    assert all(json.loads(line)["item_id"] == item_id for line in r.lines())


async def test_results_unknown_item(sim: Simulator) -> None:
    r = await cli("items", "results", "--item-id", "itm_nope_0000001", sim=sim)
    assert r.code == 1
    assert r.err.strip() == "aiobatch: error: item itm_nope_0000001 not found"

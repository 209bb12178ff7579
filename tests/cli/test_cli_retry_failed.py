"""``aiobatch jobs retry-failed``: new job ids (table / JSON), dry runs, a create
failing part-way and the same command finishing it without duplicates."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _clock import FakeTime, fake_time
from cli_support import clear_env, cli

from aiobatch.testing import Faults, SimClock, SimJob, Simulator, Trigger

JOB = "bjb-cli-retry"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_env(monkeypatch)
    monkeypatch.chdir(tmp_path)  # the default state file goes to the current directory


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [SimJob(job_id=JOB, total_items=2000, mix={"completed": 0.8, "failed": 0.2})]
    async with Simulator(jobs=jobs, clock=SimClock.frozen_at()) as s:
        yield s


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> None:
    # A rerun waits for the server to show a job it may have made: not for real.
    fake_time(monkeypatch, FakeTime(sim))


def state_file() -> Path:
    return Path(f".aiobatch-retry-{JOB}.json")


def write(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def submitted(sim: Simulator) -> Counter[str]:
    return Counter(i for r in sim.creates for i in r.item_ids or ())


async def test_prints_the_new_job_ids(sim: Simulator) -> None:
    r = await cli(
        "jobs",
        "retry-failed",
        "--project-id",
        "prj-1",
        "--job-id",
        JOB,
        "--chunk-size",
        "150",
        "-q",
        sim=sim,
    )
    assert (r.code, r.err) == (0, "")
    assert all(rec.job_id in r.out for rec in sim.creates)
    assert submitted(sim) == Counter(sim.item_ids(JOB, "failed"))
    state = json.loads(state_file().read_text())
    assert [c["job_id"] for c in state["created"]] == [rec.job_id for rec in sim.creates]


async def test_json_and_dry_run(sim: Simulator) -> None:
    n = sim.count(JOB, "failed")
    r = await cli(
        "jobs",
        "retry-failed",
        "--project-id",
        "prj-1",
        "--job-id",
        JOB,
        "--dry-run",
        "--format",
        "json",
        sim=sim,
    )
    assert r.code == 0
    doc = json.loads(r.out)
    assert (doc["dry_run"], doc["found"], doc["created"]) == (True, n, [])
    assert sum(doc["planned"]) == n
    assert sim.creates == []
    assert not state_file().exists()
    r = await cli(
        "jobs",
        "retry-failed",
        "--project-id",
        "prj-1",
        "--job-id",
        JOB,
        "--status",
        "failed",
        "--status",
        "skipped",
        "--chunk-size",
        "100",
        "--format",
        "json",
        "--job-config",
        '{"type": "parse"}',
        sim=sim,
    )
    doc = json.loads(r.out)
    assert [c["job_id"] for c in doc["created"]] == [rec.job_id for rec in sim.creates]
    assert doc["config_source"] == "job_config argument"
    assert sum(c["items"] for c in doc["created"]) == n + sim.count(JOB, "skipped")


async def test_a_failed_create_then_the_same_command_finishes(sim: Simulator) -> None:
    sim.faults = Faults(server_error=Trigger(after=1, first=1, on="create"))
    argv = [
        "jobs",
        "retry-failed",
        "--project-id",
        "prj-1",
        "--job-id",
        JOB,
        "--chunk-size",
        "100",
        "--format",
        "json",
    ]
    r = await cli(*argv, sim=sim)
    assert r.code == 1
    assert "1 new job(s) created" in r.err
    assert "run the same command again" in r.err
    assert len(json.loads(r.out)["created"]) == 1
    r = await cli(*argv, sim=sim)
    assert r.code == 0
    assert "resuming from" in r.err
    assert submitted(sim) == Counter(sim.item_ids(JOB, "failed"))  # none twice
    r = await cli(*argv, sim=sim)  # once more: nothing left to create
    assert r.code == 0
    assert submitted(sim) == Counter(sim.item_ids(JOB, "failed"))


async def test_a_bad_state_file_or_config_is_a_usage_error(sim: Simulator) -> None:
    write("s.json", '{"source_job_id": "other"}')
    r = await cli(
        "jobs",
        "retry-failed",
        "--project-id",
        "prj-1",
        "--job-id",
        JOB,
        "--state",
        "s.json",
        sim=sim,
    )
    assert r.code == 2
    assert "belongs to job other" in r.err
    r = await cli(
        "jobs",
        "retry-failed",
        "--project-id",
        "prj-1",
        "--job-id",
        JOB,
        "--job-config",
        "[1]",
        sim=sim,
    )
    assert r.code == 2
    r = await cli(
        "jobs",
        "retry-failed",
        "--project-id",
        "prj-1",
        "--job-id",
        JOB,
        "--job-config",
        '{"type": "x"}',
        sim=sim,
    )
    assert r.code == 2  # the API refused the configuration (422)
    assert sim.creates == []


async def test_messages_say_what_was_tried(sim: Simulator) -> None:
    # A create is sent once (never repeated blindly); a GET is retried.
    sim.faults = Faults(server_error=Trigger(first=1, on="create"), error_status=524)
    r = await cli("jobs", "retry-failed", "--project-id", "prj-1", "--job-id", JOB, sim=sim)
    assert r.code == 1
    assert "the API failed with 524 (sent once, not retried)" in r.err
    assert "after retries" not in r.err
    sim.faults = Faults(server_error=Trigger(every=1, on="*"))
    r = await cli("jobs", "status", "--job-id", JOB, sim=sim)
    assert r.code == 1
    assert "the API failed with 503 (after 6 attempts)" in r.err

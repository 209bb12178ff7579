"""``download --only-failed``: fetch again only what a finished download marks
failed (issue 24, case 8), for v1 (``items download``) and v2 (``batches
download``), into files or one JSON Lines file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import clear_env, cli

from aiobatch.cli._download import INDEX_NAME, STATE_NAME
from aiobatch.testing import Faults, SimBatch, SimClock, SimJob, Simulator, Trigger

T0 = 1_800_000_000.0
JOB = SimJob(
    job_id="bjb-only-failed",
    total_items=40,
    seed=8,
    mix={"completed": 1.0},
    result_error_every=0,
    result_missing_every=0,
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[JOB], clock=SimClock.frozen_at(T0)) as s:
        s.batches.add(SimBatch(batch_id="bat-of", created_at=T0 - 3600, files=30))
        yield s


def _index(out: Path, fmt: str) -> Path:
    return out / INDEX_NAME if fmt == "files" else out


def _rows(out: Path, fmt: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in _index(out, fmt).read_text().splitlines()]


def _requests(sim: Simulator, part: str) -> int:
    return sum(part in q.path for q in sim.stats.log)


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
@pytest.mark.parametrize(
    ("command", "endpoint", "part"),
    [
        (["items", "download", "--job-id", JOB.job_id], "parse_result", "/result/"),
        (["batches", "download", "--batch-id", "bat-of"], "parse_v2_job", "/api/v2/parse/"),
    ],
)
async def test_only_the_failed_items_are_fetched_again(
    sim: Simulator, tmp_path: Path, fmt: str, command: list[str], endpoint: str, part: str
) -> None:
    out = tmp_path / ("out" if fmt == "files" else "out.jsonl")
    argv = [*command, "--format", fmt, "-o", str(out), "--max-retries", "0"]
    sim.faults = Faults(server_error=Trigger(every=4, on=endpoint), error_status=503)
    first = await cli(*argv, sim=sim)
    assert first.code == 1, first.err
    before = _rows(out, fmt)
    failed = [r["item_id"] for r in before if r["status"] == "failed"]
    assert failed
    assert 0 < len(failed) < len(before)

    sim.faults = Faults()
    asked = _requests(sim, part)
    again = await cli(*argv, "--only-failed", sim=sim)
    assert _requests(sim, part) - asked == len(failed)  # nothing else fetched again
    after = _rows(out, fmt)
    assert [r["item_id"] for r in after] == [r["item_id"] for r in before]
    assert any(o["error_kind"] == "unavailable" for o in before)
    for old, new in zip(before, after, strict=True):
        if old["status"] == "ok":
            assert new == old  # the lines that were ok are kept as they were
        else:  # fetched again: the 503 is gone (the sim's v2 batch has failed jobs too)
            assert new["error_kind"] != "unavailable", new
        if fmt == "files" and new["status"] == "ok":
            assert (out / str(new["file"])).is_file()
    pairs = zip(before, after, strict=True)
    now_ok = sum(o["status"] == "failed" and n["status"] == "ok" for o, n in pairs)
    assert now_ok
    still = len(failed) - now_ok
    assert again.code == (1 if still else 0), again.err
    assert f"{now_ok} now ok, {still} still without a result" in again.err
    if not still:
        done = await cli(*argv, "--only-failed", sim=sim)
        assert done.code == 0
        assert "no failed items" in done.err


async def test_only_failed_refuses_an_interrupted_download(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / INDEX_NAME).write_text("")
    (out / STATE_NAME).write_text("{}")
    r = await cli(
        "items", "download", "--job-id", JOB.job_id, "-o", str(out), "--only-failed", sim=sim
    )
    assert r.code == 2
    assert "--resume" in r.err


async def test_only_failed_needs_a_download(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "nothing"
    r = await cli(
        "items", "download", "--job-id", JOB.job_id, "-o", str(out), "--only-failed", sim=sim
    )
    assert r.code == 2
    assert "does not exist" in r.err


async def test_the_library_refuses_a_single_str_as_only(sim: Simulator) -> None:
    from aiobatch import BatchClient

    async with BatchClient(sim.api_key, base_url=sim.base_url) as client:
        with pytest.raises(TypeError, match="only must be a collection of ids"):
            client.job_items.iter_results(JOB.job_id, only="itm-1")
        with pytest.raises(TypeError, match="only must hold str ids"):
            client.batches.iter_results("bat-of", only=[1])  # type: ignore[list-item]

"""``client.jobs.retry_failed`` against a server that fails creates every way
(``create_server``): rerun with the same ``state`` until it is complete, and
every failed item is in exactly one job, by the server's own record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from _clock import FakeTime
from create_server import CONFIG, FAILS, CreateServer, Job, running

from aiobatch import BatchClient, RetryChunk, RetryFailedError, RetryPlan, Timeout

SRC = "bjb-hostile-src"


def statuses(n: int, failed_every: int = 2) -> list[str]:
    return ["failed" if i % failed_every == 0 else "completed" for i in range(n)]


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def server(clock: FakeTime) -> AsyncIterator[CreateServer]:
    srv = CreateServer(clock=clock.wall_clock, statuses=statuses(60))  # 30 failed
    async with running(srv):
        yield srv


def client(server: CreateServer, clock: FakeTime) -> BatchClient:
    return BatchClient(
        api_key="sk-hostile",
        base_url=server.url,
        project_id="prj-hostile",  # item-ids jobs are made in a project
        retry=clock.policy(),
        timeout=Timeout(total=1.0, read=1.0),  # a hung create is given up quickly
    )


async def one_run(server: CreateServer, clock: FakeTime, state: Any) -> RetryPlan | None:
    """One call; ``None`` when it failed or was interrupted (as a user sees it)."""
    async with client(server, clock) as c:
        call = asyncio.ensure_future(c.jobs.retry_failed(SRC, chunk_size=10, state=state))
        blocked = asyncio.ensure_future(server.blocked.wait())
        await asyncio.wait([call, blocked], return_when=asyncio.FIRST_COMPLETED)
        if not call.done():  # the create is in flight, its job made: Ctrl-C now
            call.cancel()
            server.blocked.clear()
        blocked.cancel()
        try:
            return await call
        except (RetryFailedError, asyncio.CancelledError):
            return None


async def until_complete(server: CreateServer, clock: FakeTime, state: Any) -> int:
    """Run again and again, as the docs say; how many runs it took."""
    for run in range(1, 12):
        plan = await one_run(server, clock, state)
        if plan is not None:
            assert plan.complete
            return run
    raise AssertionError("the rerun never completed")


def exactly_once(server: CreateServer) -> None:
    assert server.per_item() == dict.fromkeys(server.failed(), 1)


@pytest.mark.parametrize("fail", FAILS)
async def test_each_failure_then_the_rerun_makes_every_item_once(
    fail: str, server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.script = ["ok", fail]
    runs = await until_complete(server, clock, tmp_path / "state.json")
    assert runs == 2
    exactly_once(server)
    assert len(server.created) == 3  # three chunks, three jobs: none twice


async def test_the_original_configuration_is_sent_as_the_job_had_it(
    server: CreateServer, clock: FakeTime
) -> None:
    async with client(server, clock) as c:
        plan = await c.jobs.retry_failed(SRC, chunk_size=10)
    assert plan.complete
    assert plan.config_source == f"item {server.failed()[0]}"
    assert [set(b) for b in server.bodies] == [{"job_config", "item_ids"}] * 3
    assert all(b["job_config"] == CONFIG for b in server.bodies)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 524])
async def test_every_5xx_after_the_job_was_made_is_found(
    status: int, server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.script, server.error_status = ["error_after"], status
    assert await until_complete(server, clock, tmp_path / "s.json") == 2
    exactly_once(server)
    assert len(server.created) == 3


async def test_every_failure_in_a_row(
    server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.statuses = statuses(140)  # 70 failed: 7 chunks
    server.script = ["ok", *FAILS]
    assert await until_complete(server, clock, tmp_path / "s.json") == len(FAILS) + 1
    exactly_once(server)
    assert len(server.created) == 7


@pytest.mark.parametrize("newest_first", [True, False])
async def test_old_jobs_are_not_read_in_any_listing_order(
    newest_first: bool, server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.newest_first = newest_first
    server.add_old_jobs(250, size=10, age=3600.0)  # the size of a chunk, an hour old
    server.script = ["ok", "error_after", "error_before"]
    assert await until_complete(server, clock, tmp_path / "s.json") == 3
    exactly_once(server)
    assert len(server.created) == 3
    # Only the job made by the failed create is looked into: not the old jobs of
    # the chunk's size, nor the jobs the plan already knows.
    assert set(server.item_reads) - {SRC} == {server.created[1].id}
    # ...and one page of it: the chunk's size and one more, to see a larger job
    # (and at most the scan's check that the short page was the end: one item).
    looked = [n for j, n in zip(server.item_reads, server.item_limits, strict=True) if j != SRC]
    assert looked[0] == 11
    assert sum(looked) <= 12


@pytest.mark.parametrize("other", ["half_ours", "unreadable"])
async def test_an_ambiguous_job_keeps_the_chunk_uncertain_and_names_it(
    other: str, server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.script = ["error_before"]
    state = tmp_path / "s.json"
    assert await one_run(server, clock, state) is None
    doubt = RetryPlan.from_json(json.loads(state.read_text())).uncertain[0]
    # Someone made a job of the chunk's size, half of it the chunk's items (or
    # its items answer 404): ours?
    ids = [*doubt.item_ids[:5], *(f"other-{n}" for n in range(5))]
    server.old.append(Job("bjb-someone", ids, clock.wall_clock(), unreadable=other != "half_ours"))
    async with client(server, clock) as c:
        plan = await c.jobs.retry_failed(SRC, chunk_size=10, state=state)
    assert not plan.complete
    [still] = plan.uncertain
    assert (still.item_ids, still.candidates) == (doubt.item_ids, ("bjb-someone",))
    assert sorted(plan.not_submitted) == sorted(doubt.item_ids)
    assert len(server.created) == 2  # the other chunks, not this one


async def test_nothing_is_resubmitted_before_the_server_had_time(
    server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.script = ["error_before"]
    state = tmp_path / "s.json"
    await one_run(server, clock, state)
    async with client(server, clock) as c:
        dry = await c.jobs.retry_failed(SRC, chunk_size=10, state=state, dry_run=True)
        assert len(dry.uncertain) == 1  # a dry run does not wait: still unknown
        waited = len(clock.sleeps)
        plan = await c.jobs.retry_failed(SRC, chunk_size=10, state=state)
    assert plan.complete
    assert sum(clock.sleeps[waited:]) >= 60.0 - 1e-6  # the settle time, on the fake clock
    exactly_once(server)


class DictStore:
    """A service's own store (here: a dict), async as a database would be."""

    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None
        self.saves = 0

    async def load(self) -> Mapping[str, Any] | None:
        return self.data

    async def save(self, data: dict[str, Any]) -> None:
        self.data = json.loads(json.dumps(data))
        self.saves += 1


async def test_a_second_library_call_with_the_same_store_resumes(
    server: CreateServer, clock: FakeTime
) -> None:
    store = DictStore()
    async with client(server, clock) as c:
        first = await c.jobs.retry_failed(SRC, chunk_size=10, state=store)
        second = await c.jobs.retry_failed(SRC, chunk_size=10, state=store)  # a repeated POST
    assert first.complete
    assert second.complete
    assert second.chunks == []
    assert second.job_ids == first.job_ids
    assert len(server.created) == 3
    exactly_once(server)


class SyncStore:
    """A store with plain methods (a dict a service keeps in memory)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None

    def load(self) -> Mapping[str, Any] | None:
        return self.data

    def save(self, data: dict[str, Any]) -> None:
        self.data = json.loads(json.dumps(data))


async def test_a_plain_store_resumes_after_an_interruption(
    server: CreateServer, clock: FakeTime
) -> None:
    store = SyncStore()
    server.script = ["ok", "block_after"]
    assert await one_run(server, clock, store) is None  # Ctrl-C mid-create
    assert store.data is not None
    assert len(RetryPlan.from_json(store.data).uncertain) == 1  # written ahead
    assert await until_complete(server, clock, store) == 1
    assert len(server.created) == 3
    exactly_once(server)


async def test_a_state_that_is_no_store_is_refused_before_any_request(
    server: CreateServer, clock: FakeTime
) -> None:
    async with client(server, clock) as c:
        with pytest.raises(TypeError, match="state must be a path or an object with load"):
            await c.jobs.retry_failed(SRC, state=object())  # type: ignore[arg-type]
    assert server.item_reads == []
    assert server.created == []


async def test_a_store_from_another_job_is_refused(server: CreateServer, clock: FakeTime) -> None:
    store = DictStore()
    store.data = RetryPlan("bjb-other", ("failed",), 10).to_json()
    async with client(server, clock) as c:
        with pytest.raises(ValueError, match="belongs to job bjb-other"):
            await c.jobs.retry_failed(SRC, state=store)
        with pytest.raises(ValueError, match="not both"):
            await c.jobs.retry_failed(SRC, state=store, already_created=[])
    assert server.created == []


async def test_a_live_plan_round_trips_every_field(server: CreateServer, clock: FakeTime) -> None:
    server.statuses = ["failed"] * 150
    server.script, server.error_status = ["ok", "error_before"], 422  # refused: not made
    async with client(server, clock) as c:
        with pytest.raises(RetryFailedError) as caught:
            await c.jobs.retry_failed(SRC, chunk_size=50)
    plan = caught.value.plan
    assert (plan.found, len(plan.chunks), len(plan.created), len(plan.pending)) == (150, 3, 1, 2)
    back = RetryPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back == plan
    assert (back.found, len(back.chunks), len(back.pending), back.complete) == (150, 3, 2, False)
    assert back.config_source == plan.config_source is not None


async def test_hostile_item_ids_are_sent_as_they_are(
    server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.ids = ["..", "a\nb", "\u2028", "  ", ".", "dfl-plain"]
    server.statuses = ["failed"] * len(server.ids)
    async with client(server, clock) as c:
        plan = await c.jobs.retry_failed(SRC, state=tmp_path / "s.json")
    assert plan.complete
    [job] = server.created
    assert sorted(job.item_ids) == sorted(server.ids)


@pytest.mark.parametrize("kind", ["file", "store"])
async def test_two_concurrent_calls_on_one_state_take_turns(
    kind: str, server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    # A double-clicked button: two POSTs at once, one state.
    state: Any = tmp_path / "s.json" if kind == "file" else DictStore()
    async with client(server, clock) as c:
        first, second = await asyncio.gather(
            c.jobs.retry_failed(SRC, chunk_size=10, state=state),
            c.jobs.retry_failed(SRC, chunk_size=10, state=str(state) if kind == "file" else state),
        )
    assert first.complete
    assert second.complete
    assert second.chunks == []  # the second read what the first saved
    assert len(server.created) == 3
    exactly_once(server)


async def test_the_record_is_saved_before_the_create_leaves(
    server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.script = ["block_after"]  # the job is made; the answer never comes
    state = tmp_path / "s.json"
    async with client(server, clock) as c:
        call = asyncio.ensure_future(c.jobs.retry_failed(SRC, chunk_size=10, state=state))
        await server.blocked.wait()
        saved = RetryPlan.from_json(json.loads(state.read_text()))  # as kill -9 would leave it
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    [doubt] = saved.uncertain
    assert doubt.attempted_at == clock.wall_clock()
    assert sorted(doubt.item_ids) == sorted(server.created[0].item_ids)


async def test_a_clock_set_back_does_not_stretch_the_settle_time(
    server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.script = ["error_before"]
    state = tmp_path / "s.json"
    await one_run(server, clock, state)
    data = json.loads(state.read_text())
    data["uncertain"][0]["attempted_at"] += 3600.0  # "an hour from now"
    state.write_text(json.dumps(data))
    waited = len(clock.sleeps)
    async with client(server, clock) as c:
        plan = await c.jobs.retry_failed(SRC, chunk_size=10, state=state)
    assert plan.complete
    assert clock.sleeps[waited:] == [60.0]  # the settle time once, not an hour
    exactly_once(server)


async def test_a_found_job_is_told_at_once_even_if_the_run_is_then_interrupted(
    server: CreateServer, clock: FakeTime, tmp_path: Path
) -> None:
    server.script = ["error_after", "block_after"]
    state = tmp_path / "s.json"
    assert await one_run(server, clock, state) is None  # the 503 made chunk 0's job
    heard: list[RetryChunk] = []
    async with client(server, clock) as c:
        call = asyncio.ensure_future(
            c.jobs.retry_failed(SRC, chunk_size=10, state=state, on_created=heard.append)
        )
        await server.blocked.wait()  # chunk 1's create is in flight: Ctrl-C now
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    [found] = heard
    assert (found.index, found.job_id, found.found) == (0, server.created[0].id, True)
    assert found.item_ids == tuple(server.created[0].item_ids)
    saved = RetryPlan.from_json(json.loads(state.read_text()))
    assert saved.earlier == [found]  # "found" kept, as every field
    assert [c.found for c in (*saved.chunks, *saved.uncertain)] == [False, False, False]

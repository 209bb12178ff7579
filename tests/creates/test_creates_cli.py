"""``aiobatch jobs retry-failed`` against the hostile create server: the
documented rerun ("run the same command again") ends with exit 0 and every
failed item in exactly one job, by the server's own record."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _clock import FakeTime, fake_time
from create_server import FAILS, CreateServer, Job, running

from aiobatch.cli import run

SRC = "bjb-hostile-src"


@pytest.fixture(autouse=True)
def _cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the state file goes to the current directory


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return fake_time(monkeypatch, FakeTime())


@pytest.fixture
async def server(clock: FakeTime) -> AsyncIterator[CreateServer]:
    srv = CreateServer(clock=clock.wall_clock, statuses=["failed", "completed"] * 70)
    async with running(srv):
        yield srv


async def command(server: CreateServer, *extra: str) -> tuple[int | None, str, str]:
    """The documented command once: the exit code (``None`` when interrupted
    mid-create), stderr and stdout."""
    argv = ["jobs", "retry-failed", "--job-id", SRC, "--chunk-size", "10", *extra]
    argv += ["--base-url", server.url, "--api-key", "sk-hostile", "--timeout", "1"]
    argv += ["--project-id", "prj-hostile"]  # item-ids jobs are made in a project
    out, err = io.StringIO(), io.StringIO()
    call = asyncio.ensure_future(run(argv, stdout=out, stderr=err))
    blocked = asyncio.ensure_future(server.blocked.wait())
    await asyncio.wait([call, blocked], return_when=asyncio.FIRST_COMPLETED)
    blocked.cancel()
    if not call.done():  # Ctrl-C while the create is in flight
        server.blocked.clear()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        return None, err.getvalue(), out.getvalue()
    return call.result(), err.getvalue(), out.getvalue()


async def test_the_same_command_again_finishes_after_every_kind_of_failure(
    server: CreateServer,
) -> None:
    server.script = ["ok", *FAILS]
    codes, found = [], 0
    for _ in range(len(FAILS) + 1):
        code, err, _ = await command(server)
        codes.append(code)
        found += err.count("the earlier create of 10 items made it")
        if code == 0:
            break
        assert code is None or "run the same command again" in err
    assert codes[-1] == 0
    assert len(codes) == len(FAILS) + 1
    # The creates that made their job unheard of (error, hang, reset, Ctrl-C, an
    # unreadable 201, after making it), each said by the run that found it, even the
    # run that was then interrupted mid-create (it says so as soon as it knows); a
    # chunk submitted again is "created", not "found".
    assert found == 5
    assert server.per_item() == dict.fromkeys(server.failed(), 1)  # every item, once
    assert len(server.created) == 7  # 70 failed items in chunks of 10


async def test_an_ambiguous_chunk_names_the_jobs_to_look_at(server: CreateServer) -> None:
    server.script = ["error_before"]
    code, _, _ = await command(server)
    assert code == 1
    mine = server.failed()[:10]  # the first chunk, the one that failed
    ids = [*mine[:5], *(f"other-{n}" for n in range(5))]
    server.old.append(Job("bjb-someone", ids, server.clock()))
    code, err, _ = await command(server)
    assert code == 1
    assert "look at job(s) bjb-someone" in err
    code, _, out = await command(server, "--format", "json")
    assert code == 1
    [doubt] = json.loads(out)["uncertain"]
    assert (doubt["items"], doubt["candidates"]) == (10, ["bjb-someone"])
    assert not any(set(j.item_ids) == set(mine) for j in server.created)


@pytest.mark.parametrize("settle", [None, "5", "0"])
async def test_settle_is_how_long_an_unknown_create_is_given(
    settle: str | None, server: CreateServer, clock: FakeTime
) -> None:
    server.script = ["error_before"]  # the outcome is unknown: no job was made
    assert (await command(server))[0] == 1
    waited = len(clock.sleeps)
    extra = () if settle is None else ("--settle", settle)
    code, err, _ = await command(server, *extra)
    assert code == 0
    seconds = 60.0 if settle is None else float(settle)
    then = f"waiting until {seconds:g} s after each attempt" if seconds else "at once"
    assert f"(submitting the items again, {then}, if none shows)" in err
    assert sum(clock.sleeps[waited:]) == seconds  # on the fake clock: nothing slept for real
    assert server.per_item() == dict.fromkeys(server.failed(), 1)


async def test_settle_must_be_a_number_of_seconds(server: CreateServer) -> None:
    code, err, _ = await command(server, "--settle", "-1")
    assert code == 2
    assert "--settle: must be >= 0" in err
    assert server.created == []


async def test_the_failure_says_which_items_may_be_in_a_job(server: CreateServer) -> None:
    server.script = ["ok", "error_after"]
    code, err, _ = await command(server)
    assert code == 1
    said = "1 new job(s) created, 50 item(s) not submitted, 10 in a create that may have made"
    assert said in err
    server.script, server.error_status = ["error_before"], 409  # refused: surely not made
    code, err, _ = await command(server)
    assert code == 1
    assert "2 new job(s) created, 50 item(s) not submitted: run the same command" in err


async def test_item_ids_no_path_could_hold_are_re_run(server: CreateServer) -> None:
    # They travel in the create's JSON body: nothing to refuse, nothing to blame the user for.
    server.ids = ["..", "a\nb", "\u2028", "  ", ".", "dfl-plain"]
    server.statuses = ["failed"] * len(server.ids)
    code, err, _ = await command(server)
    assert (code, err.count("\n")) == (0, 1), err  # one line: "created job ..."
    [job] = server.created
    assert sorted(job.item_ids) == sorted(server.ids)


async def test_an_item_id_no_create_can_carry_is_named_and_nothing_is_recorded(
    server: CreateServer, clock: FakeTime
) -> None:
    server.ids = ["", "dfl-a"]  # listed by the server, yet refused by jobs.create
    server.statuses = ["failed"] * 2
    for _ in range(2):
        code, err, _ = await command(server)
        assert code == 1  # the server's data, not the command line: not a usage error
        assert "lists an item whose id cannot be sent in a create ('':" in err
        assert "unknown" not in err  # no create was recorded as maybe sent...
    assert clock.sleeps == []  # ...so no rerun waits for one
    assert server.created == []


async def test_json_tells_a_found_job_from_a_created_one(server: CreateServer) -> None:
    server.script = ["error_after"]  # the first create makes its job, then fails
    assert (await command(server))[0] == 1
    code, _, out = await command(server, "--format", "json")
    assert code == 0
    created = json.loads(out)["created"]
    assert [c["found"] for c in created] == [True] + [False] * (len(created) - 1)
    assert len(server.created) == len(created)  # the found one was not made twice

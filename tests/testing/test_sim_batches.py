"""The simulator's v2 Batches API over raw HTTP: shapes, the clock, cursor pages,
filters, validation and the cursor faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from _sim_http import Reply, session

from aiobatch.testing import Faults, SimBatch, SimClock, Simulator, Trigger

V2 = "/api/v2/batches"
T0 = 1_800_000_000.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0)) as s:
        yield s


async def http(
    sim: Simulator, method: str, path: str = "", *, body: Any = None, **params: Any
) -> Reply:
    kwargs: dict[str, Any] = {"params": {k: str(v) for k, v in params.items()}}
    if body is not None:
        kwargs["data"] = msgspec.json.encode(body)
        kwargs["headers"] = {"Content-Type": "application/json"}
    async with session(sim) as s, s.request(method, V2 + path, **kwargs) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


def seed(sim: Simulator, n: int, **kw: Any) -> list[str]:
    for i in range(n):
        sim.batches.add(SimBatch(batch_id=f"bat-{i:03d}", created_at=T0 - 1000 + i, **kw))
    return sim.batches.ids()


async def walk(sim: Simulator, **params: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    token: str | None = None
    requests = 0
    while True:
        q = dict(params)
        if token is not None:
            q["page_token"] = token
        reply = await http(sim, "GET", **q)
        assert reply.status == 200, reply.body
        requests += 1
        page = reply.json()
        assert set(page) == {"items", "next_page_token"}
        ids += [b["id"] for b in page["items"]]
        token = page["next_page_token"]
        if not token:
            return ids, requests


async def test_a_batch_moves_through_its_statuses_on_the_clock(sim: Simulator) -> None:
    sim.batches.add(
        SimBatch(batch_id="bat-a", files=6, start_delay=1, throttled_for=2, rate=2, error_every=3)
    )
    seen = []
    for _ in range(6):
        body = (await http(sim, "GET", "/bat-a", expand="results")).json()
        seen.append((body["status"], body["results"]))
        sim.advance(1)
    assert [s for s, _ in seen] == [
        "PENDING",
        "THROTTLED",
        "THROTTLED",
        "RUNNING",
        "RUNNING",
        "RUNNING",
    ]
    assert all(r is None for _, r in seen)  # null while running
    sim.advance(10)
    body = (await http(sim, "GET", "/bat-a", expand="results")).json()
    assert body["status"] == "COMPLETED"
    assert body["config"] == {"job": {"type": "parse_v2", "configuration_id": "cfg-sim-0001"}}
    assert body["created_at"].endswith("Z")
    results = body["results"]
    assert len(results) == 6
    assert len({r["source_directory_file_id"] for r in results}) == 6
    failed = [r for r in results if r["job_reference"] is None]
    assert len(failed) == 2
    assert all(r["error_message"] for r in failed)
    ok = [r["job_reference"] for r in results if r["job_reference"]]
    assert {r["type"] for r in ok} == {
        "parse_v2"
    }  # the SDK types it Literal["parse_v2", "extract_v2"]
    plain = (await http(sim, "GET", "/bat-a")).json()
    assert "results" not in plain


async def test_cursor_pages_cover_every_batch_once_newest_first(sim: Simulator) -> None:
    expected = seed(sim, 23)
    assert expected[0] == "bat-022"
    ids, requests = await walk(sim, page_size=5)
    assert ids == expected
    assert requests == 5
    assert (await walk(sim, page_size=23))[1] == 1
    assert (await walk(sim, page_size=100))[0] == expected


async def test_batches_created_during_a_walk_do_not_shift_its_pages(sim: Simulator) -> None:
    expected = seed(sim, 10)
    first = (await http(sim, "GET", page_size=4)).json()
    sim.advance(5)
    sim.batches.add(SimBatch(batch_id="bat-new"))  # newest: sorts before the position
    rest, _ = await walk(sim, page_size=4, page_token=first["next_page_token"])
    assert [b["id"] for b in first["items"]] + rest == expected


async def test_filters(sim: Simulator) -> None:
    seed(sim, 6)
    sim.batches.add(SimBatch(batch_id="bat-dir", source_directory_id="dir-x", created_at=T0))
    sim.batches.add(SimBatch(batch_id="bat-failed", status="FAILED", created_at=T0 - 5000))
    sim.advance(3600)
    assert (await walk(sim, source_directory_id="dir-x"))[0] == ["bat-dir"]
    assert (await walk(sim, status="FAILED"))[0] == ["bat-failed"]
    after = "2027-01-15T07:43:23Z"  # T0 - 1000 + 3 s, as ISO 8601
    got, _ = await walk(sim, created_at_on_or_after=after, page_size=2)
    assert got == ["bat-dir", "bat-005", "bat-004", "bat-003"]
    got, _ = await walk(sim, created_at_on_or_before=after)
    assert got == ["bat-003", "bat-002", "bat-001", "bat-000", "bat-failed"]
    assert got == sim.batches.ids(created_on_or_before=T0 - 997)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": "x"}, "page_size"),
        ({"status": "running"}, "status"),
        ({"page_token": "!!"}, "page_token"),
        ({"created_at_on_or_after": "yesterday"}, "created_at_on_or_after"),
    ],
)
async def test_list_validation_is_fastapi_shaped(
    sim: Simulator, params: dict[str, Any], loc: str
) -> None:
    reply = await http(sim, "GET", **params)
    assert reply.status == 422
    [error] = reply.json()["detail"]
    assert error["loc"] == ["query", loc]


async def test_create_then_get_then_cancel(sim: Simulator) -> None:
    body = {
        "config": {"job": {"type": "extract_v2", "configuration_id": "cfg-1"}},
        "source_directory_id": "dir-1",
    }
    reply = await http(sim, "POST", body=body, project_id="proj-9")
    assert reply.status == 200
    made = reply.json()
    assert made["status"] == "PENDING"
    assert made["project_id"] == "proj-9"
    assert sim.batches.ids() == [made["id"]]
    sim.advance(2)
    assert (await http(sim, "GET", f"/{made['id']}")).json()["status"] == "RUNNING"
    cancelled = await http(sim, "POST", f"/{made['id']}/cancel")
    assert cancelled.json()["status"] == "CANCELLED"
    sim.advance(100)
    again = (await http(sim, "POST", f"/{made['id']}/cancel")).json()
    assert again["status"] == "CANCELLED"
    results = (await http(sim, "GET", f"/{made['id']}", expand="results")).json()["results"]
    assert [r["job_reference"] is not None for r in results] == [True] * 5 + [False] * 5
    assert {r["job_reference"]["type"] for r in results if r["job_reference"]} == {"extract_v2"}


async def test_cancel_errors(sim: Simulator) -> None:
    sim.batches.add(SimBatch(batch_id="bat-done", created_at=T0 - 1000))
    # Cancelling a finished batch: not published, so accepted and a no-op...
    done = await http(sim, "POST", "/bat-done/cancel")
    assert (done.status, done.json()["status"]) == (200, "COMPLETED")
    # ...unless the knob says otherwise.
    sim.faults = Faults(refuse_cancel_finished=True)
    assert (await http(sim, "POST", "/bat-done/cancel")).status == 400
    assert (await http(sim, "POST", "/bat-nope/cancel")).status == 404
    missing = await http(sim, "GET", "/bat-nope")
    assert missing.status == 404
    assert missing.json() == {"detail": "Batch bat-nope not found"}


@pytest.mark.parametrize(
    ("body", "locs"),
    [
        ({}, [["body", "config"], ["body", "source_directory_id"]]),
        ([], [["body"]]),
        ({"config": {}, "source_directory_id": "d"}, [["body", "config", "job"]]),
        (
            {"config": {"job": {}}, "source_directory_id": 3},
            [
                ["body", "config", "job", "type"],
                ["body", "config", "job", "configuration_id"],
                ["body", "source_directory_id"],
            ],
        ),
        (
            {
                "config": {"job": {"type": "parse", "configuration_id": "c"}},
                "source_directory_id": "d",
            },
            [["body", "config", "job", "type"]],
        ),
    ],
)
async def test_create_validation_is_fastapi_shaped(
    sim: Simulator, body: Any, locs: list[list[str]]
) -> None:
    reply = await http(sim, "POST", body=body)
    assert reply.status == 422
    assert [e["loc"] for e in reply.json()["detail"]] == locs
    assert len(sim.batches) == 0


async def test_faults_fire_on_the_v2_routes(sim: Simulator) -> None:
    seed(sim, 3)
    sim.faults = Faults(rate_limit=Trigger(first=1, on="batches"), retry_after="0")
    assert (await http(sim, "GET")).status == 429
    assert (await http(sim, "GET")).status == 200
    assert (await http(sim, "GET", "/bat-000")).status == 200
    sim.faults = Faults(server_error=Trigger(first=1, on="batch_create"))
    body = {"config": {"job": {"type": "parse_v2", "configuration_id": "c"}}}
    assert (await http(sim, "POST", body={**body, "source_directory_id": "d"})).status == 503
    assert sim.stats.faults() == ["rate_limit", "server_error"]


async def test_a_repeating_token(sim: Simulator) -> None:
    seed(sim, 10)
    sim.faults = Faults(repeat_token=Trigger(after=1, first=1, on="batches"))
    first = (await http(sim, "GET", page_size=3)).json()
    token = first["next_page_token"]
    second = (await http(sim, "GET", page_size=3, page_token=token)).json()
    assert second["next_page_token"] == token  # the same token again: a loop


async def test_an_empty_page_that_still_carries_a_token(sim: Simulator) -> None:
    expected = seed(sim, 10)
    sim.faults = Faults(empty_token_page=Trigger(first=1, every=3, on="batches"))
    first = (await http(sim, "GET", page_size=3)).json()
    assert first["items"] == []
    assert first["next_page_token"]
    ids, _ = await walk(sim, page_size=3, page_token=first["next_page_token"])
    assert ids == expected


def test_cursor_faults_only_target_the_batch_listing() -> None:
    with pytest.raises(ValueError, match="on='batches'"):
        Faults(repeat_token=Trigger(first=1))
    with pytest.raises(ValueError, match="on='batches'"):
        Faults(empty_token_page=Trigger(first=1, on="*"))


def test_standalone_flags_seed_batches_and_cursor_faults() -> None:
    from aiobatch.testing._cli import build_parser, faults_from_args, simulator_from_args

    ns = build_parser().parse_args(
        ["--batches", "3", "--repeat-token", "after=1,first=1", "--empty-token-page", "every=4"]
    )
    assert faults_from_args(ns) == Faults(
        repeat_token=Trigger(after=1, first=1, on="batches"),
        empty_token_page=Trigger(every=4, on="batches"),
    )
    sim = simulator_from_args(ns)
    assert sim.batches.ids() == ["bat-sim-0003", "bat-sim-0002", "bat-sim-0001"]
    assert sim.batches.status("bat-sim-0001") == "COMPLETED"
    assert simulator_from_args(build_parser().parse_args([])).batches.ids() == []

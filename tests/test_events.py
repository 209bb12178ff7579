"""event_hooks, client.stats() and the budget's environment variables."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest
from _servers import RecordingSleep
from aioresponses import CallbackResult
from aioresponses import aioresponses as Mock
from conftest import API_KEY

from aiobatch import BatchClient, ConfigurationError
from aiobatch._config import resolve_budget
from aiobatch.events import (
    Event,
    RateLimitedEvent,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    path_template,
)

ANY = re.compile(r".*")
JOB = {"id": "bjb-1", "job_type": "parse", "project_id": "p", "status": "running", "total_items": 3}
MakeClient = Callable[..., BatchClient]


def test_path_template_hides_ids() -> None:
    assert (
        path_template("/api/v1/beta/batch-processing/bjb-1f2e/items")
        == "/api/v1/beta/batch-processing/{id}/items"
    )
    assert path_template("/api/v2/batches/abc123") == "/api/v2/batches/{id}"


async def test_events_for_a_retried_call(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.get(ANY, status=429, headers={"Retry-After": "7"})
    aioresponses.get(ANY, status=503, headers={"x-request-id": "req\x1b[31m"})
    aioresponses.get(
        ANY, payload={"job": JOB, "progress_percentage": 1}, headers={"x-request-id": "r-3"}
    )
    seen: list[Event] = []

    async def async_hook(event: Event) -> None:
        seen.append(event)

    hooks = {"request": [seen.append], "response": [async_hook], "retry": [seen.append]}
    async with make_client(event_hooks={**hooks, "rate_limited": [seen.append]}) as client:
        await client.jobs.get("bjb-1")
        stats = client.stats()
    kinds = [type(e).__name__ for e in seen]
    assert kinds == [
        "RequestEvent",
        "RateLimitedEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
    ]
    requests = [e for e in seen if isinstance(e, RequestEvent)]
    assert [r.attempt for r in requests] == [1, 2, 3]
    assert {r.path for r in requests} == {"/api/v1/beta/batch-processing/{id}"}
    responses = [e for e in seen if isinstance(e, ResponseEvent)]
    assert [r.status for r in responses] == [429, 503, 200]
    assert [r.request_id for r in responses] == [None, None, "r-3"]  # control chars refused
    assert responses[0].request is requests[0]
    limited = next(e for e in seen if isinstance(e, RateLimitedEvent))
    assert (limited.pause, limited.source) == (7.0, "retry-after")
    retries = [e for e in seen if isinstance(e, RetryEvent)]
    assert [(r.cause, r.status, r.attempt) for r in retries] == [
        ("RateLimitError", 429, 2),
        ("InternalServerError", 503, 3),
    ]
    assert retries[0].delay == sleeps.delays[0]
    assert stats.requests == 3
    assert stats.retries == 2
    assert stats.rate_limited == 1
    assert stats.responses == {429: 1, 503: 1, 200: 1}
    assert stats.in_flight == 0
    assert API_KEY not in repr(seen) + repr(stats)


async def test_a_raising_hook_is_logged_and_ignored(
    aioresponses: Mock, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    aioresponses.get(ANY, payload={"job": JOB, "progress_percentage": 1})
    got: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("hook bug")

    caplog.set_level(logging.ERROR, logger="aiobatch.events")
    async with make_client(event_hooks={"request": [broken, got.append]}) as client:
        job = await client.jobs.get("bjb-1")
    assert job.job.id == "bjb-1"
    assert len(got) == 1  # the next hook still ran
    assert "hook bug" in caplog.text
    assert caplog.records[0].name == "aiobatch.events"


async def test_no_answer_is_a_response_event_with_the_error(
    aioresponses: Mock, make_client: MakeClient
) -> None:
    aioresponses.get(ANY, exception=TimeoutError())
    got: list[Event] = []
    async with make_client(max_retries=0, event_hooks={"response": [got.append]}) as client:
        with pytest.raises(Exception, match="timed out"):
            await client.jobs.get("bjb-1")
        assert client.stats().errors == {"APITimeoutError": 1}
    assert isinstance(got[0], ResponseEvent)
    assert (got[0].status, got[0].error) == (None, "APITimeoutError")


@pytest.mark.parametrize(
    "hooks",
    [
        {"requests": [print]},
        {"request": print},
        {"request": [1]},
        ["request"],
        {"request": None},
        {"scan": 3},
    ],
)
def test_bad_event_hooks_are_refused(hooks: object) -> None:
    with pytest.raises(ConfigurationError, match="event_hooks"):
        BatchClient(API_KEY, event_hooks=hooks)  # type: ignore[arg-type]


def test_budget_from_the_environment() -> None:
    env = {"LLAMA_CLOUD_MAX_CONCURRENCY": "8", "LLAMA_CLOUD_RATE_LIMIT": "2.5"}
    assert resolve_budget(None, None, env) == (8, 2.5)
    assert resolve_budget(4, 1.0, env) == (4, 1.0)  # arguments win
    assert resolve_budget(None, None, {}) == (64, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LLAMA_CLOUD_MAX_CONCURRENCY", "many"),
        ("LLAMA_CLOUD_MAX_CONCURRENCY", "0"),
        ("LLAMA_CLOUD_RATE_LIMIT", "nan"),
        ("LLAMA_CLOUD_RATE_LIMIT", "-1"),
        ("LLAMA_CLOUD_RATE_LIMIT", "x"),
    ],
)
def test_bad_environment_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        resolve_budget(None, None, {name: value})


def test_path_template_is_an_allowlist() -> None:
    # Plain-letter ids and names are ids too; a leading method is kept.
    assert (
        path_template("/api/v1/beta/batch-processing/bjb-events/items")
        == "/api/v1/beta/batch-processing/{id}/items"
    )
    assert path_template("GET /api/v2/batches/nightly") == "GET /api/v2/batches/{id}"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "Retry-After": "9"}, (1.5, "retry-after-ms")),
        ({"retry-after-ms": "soon", "Retry-After": "2"}, (2.0, "retry-after")),
        ({"retry-after-ms": "-1"}, (None, "none")),
    ],
)
async def test_a_429_names_the_header_its_pause_came_from(
    aioresponses: Mock,
    make_client: MakeClient,
    headers: dict[str, str],
    expected: tuple[float | None, str],
) -> None:
    aioresponses.get(ANY, status=429, headers=headers)
    aioresponses.get(ANY, payload={"job": JOB, "progress_percentage": 1})
    got: list[Event] = []
    async with make_client(event_hooks={"rate_limited": [got.append]}) as client:
        await client.jobs.get("bjb-1")
    (limited,) = got
    assert isinstance(limited, RateLimitedEvent)
    assert (limited.pause, limited.source) == expected


async def test_an_attempt_cancelled_while_queued_was_never_sent(
    aioresponses: Mock, make_client: MakeClient
) -> None:
    release = asyncio.Event()

    async def slow(url: object, **kw: object) -> CallbackResult:
        await release.wait()
        return CallbackResult(payload={"job": JOB, "progress_percentage": 1})

    aioresponses.get(ANY, callback=slow, repeat=True)
    seen: list[Event] = []
    hooks = {"request": [seen.append], "response": [seen.append]}
    async with make_client(max_concurrency=1, event_hooks=hooks) as client:
        queued = anyio.CancelScope()

        async def second() -> None:
            with queued:
                await client.jobs.get("bjb-1")

        async with anyio.create_task_group() as tg:
            tg.start_soon(client.jobs.get, "bjb-1")
            for _ in range(20):  # the first takes the only place, the second queues
                await anyio.lowlevel.checkpoint()
            tg.start_soon(second)
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            assert client.budget.in_flight == 1
            queued.cancel()
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            release.set()
        stats = client.stats()
    # The queued attempt never left: no request event, no span, nothing counted.
    assert [type(e).__name__ for e in seen] == ["RequestEvent", "ResponseEvent"]
    assert stats.requests == 1
    assert stats.errors == {}

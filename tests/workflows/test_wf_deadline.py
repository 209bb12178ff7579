"""``timeout=`` of a wait is a deadline: the poll in flight and its retries are
cut there (``jobs.wait``/``watch``, ``batches.wait``/``watch``, the CLI's
``jobs wait`` / ``batches wait`` exit 3).  Time is fake where it is slept; a
hung poll is cut by the deadline itself."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from _clock import FakeTime, fake_time
from _servers import serve
from aiohttp import web

from aiobatch import (
    BatchClient,
    BatchWaitTimeoutError,
    InternalServerError,
    JobWaitTimeoutError,
)
from aiobatch.cli import run

JOB, BATCH = "bjb-deadline", "bat-deadline"
GUARD = 20.0  # seconds: only so that a broken build fails instead of hanging


RUNNING_JOB = {"id": JOB, "job_type": "parse", "project_id": "p", "status": "running"}
RUNNING_BATCH = {
    "id": BATCH,
    "config": {"job": {"type": "parse_v2", "configuration_id": "cfg-1"}},
    "project_id": "p",
    "source_directory_id": "dir-1",
    "status": "RUNNING",
}


class Slow:
    """Status endpoints that answer 503 + ``Retry-After: 2``, or never answer;
    ``then_*``: the first poll of each path says "running", the later ones do that."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.polls = 0
        self.answered: set[str] = set()
        self.stop = asyncio.Event()

    async def status(self, request: web.Request) -> web.Response:
        self.polls += 1
        if self.mode.startswith("then_") and request.path not in self.answered:
            self.answered.add(request.path)
            batch = request.path.startswith("/api/v2/")
            job = {"job": {**RUNNING_JOB, "total_items": 9}, "progress_percentage": 10.0}
            return web.json_response(RUNNING_BATCH if batch else job)
        if self.mode.endswith("hang"):
            await self.stop.wait()
        return web.json_response({"detail": "busy"}, status=503, headers={"Retry-After": "2"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/beta/batch-processing/{job_id}", self.status)
        app.router.add_get("/api/v2/batches/{batch_id}", self.status)
        return app


MODES = ["retry_after", "hang", "then_retry_after", "then_hang"]


@pytest.fixture(params=MODES)
async def slow(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Slow, str]]:
    server = Slow(request.param)
    async with serve(server.app()) as url:
        try:
            yield server, url
        finally:
            server.stop.set()


def client(url: str, clock: FakeTime) -> BatchClient:
    return BatchClient(api_key="sk-deadline", base_url=url, retry=clock.policy())


async def test_jobs_wait_ends_at_its_deadline(slow: tuple[Slow, str]) -> None:
    server, url = slow
    clock = FakeTime()
    async with asyncio.timeout(GUARD), client(url, clock) as c:
        with pytest.raises(JobWaitTimeoutError) as caught:
            await c.jobs.wait(JOB, timeout=1.0)
    assert sum(clock.sleeps) <= 1.0  # no retry slept past the deadline
    assert (caught.value.status is None) == (not server.mode.startswith("then_"))
    if server.mode == "retry_after":
        assert isinstance(caught.value.__cause__, InternalServerError)
        assert clock.sleeps == [1.0]  # the rest of the time, not the 2 s asked


async def test_jobs_watch_and_batches_wait_end_at_their_deadline(slow: tuple[Slow, str]) -> None:
    _, url = slow
    clock = FakeTime()
    async with asyncio.timeout(GUARD), client(url, clock) as c:
        with pytest.raises(JobWaitTimeoutError):
            async for _ in c.jobs.watch(JOB, timeout=0.5):
                pass
        with pytest.raises(BatchWaitTimeoutError):
            await c.batches.wait(BATCH, timeout=0.5)
        with pytest.raises(BatchWaitTimeoutError):
            async for _ in c.batches.watch(BATCH, timeout=0.5):
                pass
    assert sum(clock.sleeps) <= 1.5


async def test_iter_results_wait_ends_at_its_deadline(slow: tuple[Slow, str]) -> None:
    _, url = slow
    clock = FakeTime()
    async with asyncio.timeout(GUARD), client(url, clock) as c:
        with pytest.raises(JobWaitTimeoutError):
            async for _ in c.job_items.iter_results(JOB, wait=True, timeout=1.0):
                pass
        with pytest.raises(BatchWaitTimeoutError):
            async for _ in c.batches.iter_results(BATCH, wait=True, timeout=1.0):
                pass
    assert sum(clock.sleeps) <= 2.0


async def test_timeout_zero_is_one_attempt_not_retried() -> None:
    server, clock = Slow("retry_after"), FakeTime()
    async with serve(server.app()) as url, client(url, clock) as c:
        with pytest.raises(JobWaitTimeoutError):
            await c.jobs.wait(JOB, timeout=0)
    assert server.polls == 1
    assert sum(clock.sleeps) == 0


@pytest.mark.parametrize("what", [("jobs", "--job-id", JOB), ("batches", "--batch-id", BATCH)])
async def test_the_cli_wait_exits_3_at_its_deadline(
    what: tuple[str, str, str], slow: tuple[Slow, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = slow
    fake_time(monkeypatch, FakeTime())
    noun, option, ident = what
    argv = [noun, "wait", option, ident, "--timeout", "1", "--base-url", url]
    err = io.StringIO()
    async with asyncio.timeout(GUARD):
        code = await run([*argv, "--api-key", "sk-deadline"], stdout=io.StringIO(), stderr=err)
    assert code == 3
    assert "did not end within 1 s" in err.getvalue()

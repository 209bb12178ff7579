"""Requests that share one ``Retry-After`` must not come back as a herd.

Both places that wait for a server-requested delay add jitter *above* it, never
below: the retry policy (each request's own retry) and the scan-wide 429 pause
(workers queued behind it).  Randomness, sleep and clock are injected: no test
here sleeps for real.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from _servers import RecordingSleep
from multidict import CIMultiDict, CIMultiDictProxy

from aiobatch import BatchClient, RetryPolicy
from aiobatch import _protocol as proto
from aiobatch._errors import APIStatusError
from aiobatch._paging.throttle import AdaptiveLimiter
from aiobatch._paging.types import ScanProgress
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

pytestmark = pytest.mark.usefixtures("no_env")


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def error(status: int, retry_after: str) -> APIStatusError:
    return proto.make_status_error(
        status=status,
        headers=CIMultiDictProxy(CIMultiDict({"Retry-After": retry_after})),
        body=b"{}",
        method="GET",
        url_path="/p",
        now=0.0,
    )


@pytest.mark.parametrize("status", [429, 503])
async def test_workers_behind_a_scan_pause_wake_spread_and_never_early(status: int) -> None:
    clock, sleeps = Clock(), RecordingSleep()
    policy = RetryPolicy(sleep=sleeps, monotonic=clock, random=random.Random(3).random)
    limiter = AdaptiveLimiter(8, policy, ScanProgress())
    limiter.on_retry(error(status, "1"), 1.0)  # paused until t + 1.0
    clock.t += 0.25
    for _ in range(8):
        await limiter.before_attempt()
    waits = sleeps.delays
    assert len(waits) == 8
    span = min(1.0, 0.1 * 1.0 + 0.05)
    assert all(0.75 <= w <= 0.75 + span for w in waits), waits
    assert len(set(waits)) == 8
    assert max(waits) - min(waits) > 0.05


async def test_scan_pause_spread_can_be_turned_off() -> None:
    clock, sleeps = Clock(), RecordingSleep()
    policy = RetryPolicy(sleep=sleeps, monotonic=clock, retry_after_jitter_max=0.0)
    limiter = AdaptiveLimiter(4, policy, ScanProgress())
    limiter.on_retry(error(429, "2"), 2.0)
    for _ in range(3):
        await limiter.before_attempt()
    assert sleeps.delays == [2.0, 2.0, 2.0]


async def test_no_wait_once_the_pause_is_over() -> None:
    clock, sleeps = Clock(), RecordingSleep()
    policy = RetryPolicy(sleep=sleeps, monotonic=clock, random=lambda: 0.999)
    limiter = AdaptiveLimiter(4, policy, ScanProgress())
    limiter.on_retry(error(429, "1"), 1.0)
    clock.t += 1.0
    await limiter.before_attempt()
    assert sleeps.delays == []


async def test_concurrent_requests_rate_limited_together_retry_spread() -> None:
    """Eight requests answered 429 + ``Retry-After: 1`` at once: each waits at least
    the second the server asked for, and no two wait the same time."""
    sleeps = RecordingSleep()
    policy = RetryPolicy(sleep=sleeps, random=random.Random(11).random)
    faults = Faults(rate_limit=Trigger(first=8), retry_after="1")
    async with (
        Simulator([SimJob(job_id="bjb-herd", total_items=50)], faults=faults) as sim,
        BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as client,
    ):
        pages = await asyncio.gather(*(client.job_items.list("bjb-herd") for _ in range(8)))
    assert all(len(p.items) == 50 for p in pages)
    assert sim.stats.by_status() == {429: 8, 200: 8}
    assert len(sleeps.delays) == 8
    assert all(1.0 <= d <= 1.15 for d in sleeps.delays), sleeps.delays
    assert len(set(sleeps.delays)) == 8

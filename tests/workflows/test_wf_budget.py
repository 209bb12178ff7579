"""One request budget per client: twenty scans at once against 429s never exceed
``max_concurrency`` in flight and deliver every item exactly once; a 429 slows
every scan; a small scan beside big ones is served round-robin; the token bucket
paces; the shared pause is jittered above, never below."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from aiobatch import BatchClient, ConfigurationError, RetryPolicy
from aiobatch._budget import RequestBudget
from aiobatch.testing import Faults, SimJob, Simulator, Trigger


class NoSleep:
    """Records the delays; yields to the loop instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def jobs(n: int, items: int) -> list[SimJob]:
    return [SimJob(job_id=f"bjb-budget-{k:02d}", total_items=items, seed=k) for k in range(n)]


async def scan_all(client: BatchClient, job_ids: list[str], **kw: object) -> dict[str, list[str]]:
    async def one(job_id: str) -> tuple[str, list[str]]:
        return job_id, [i.item_id async for i in client.job_items.iter(job_id, **kw)]  # type: ignore[arg-type]

    return dict(await asyncio.gather(*(one(j) for j in job_ids)))


async def test_twenty_scans_share_one_budget_under_429s() -> None:
    sleep = NoSleep()
    policy = RetryPolicy(sleep=sleep, random=lambda: 0.5, max_retries=50)
    faults = Faults(rate_limit=Trigger(in_flight_above=8, on="*"), retry_after_ms="5", latency_ms=2)
    widths: list[int] = []  # the shared width right after each 429 was taken in
    async with Simulator(jobs=jobs(20, 2000), faults=faults) as sim:
        async with BatchClient(
            api_key=sim.api_key, base_url=sim.base_url, retry=policy, max_concurrency=12
        ) as client:
            client.add_event_hook("rate_limited", lambda _e: widths.append(client.budget.limit))
            got = await scan_all(client, sim.job_ids, page_size=100, concurrency=8)
            budget = client.budget
        assert sim.stats.peak_in_flight <= 12
        assert budget.peak_in_flight <= 12
        for job_id, ids in got.items():
            assert ids == sim.item_ids(job_id)  # every item, once, in order
        assert "rate_limit" in sim.stats.faults()
        assert budget.rate_limited == sim.stats.faults().count("rate_limit")
        assert len(widths) == budget.rate_limited
        assert min(widths) < 12  # the shared width was cut, not only counted
        # The shared pause was waited out with jitter above 5 ms, never below.
        pauses = [d for d in sleep.delays if 0 < d < 1]
        assert pauses
        assert min(pauses) > 0.005  # the server asked 5 ms; jitter only lengthens it


async def test_a_429_pauses_every_flow_not_only_the_one_that_got_it() -> None:
    sleep = NoSleep()
    policy = RetryPolicy(sleep=sleep, random=lambda: 0.0)
    now = [100.0]
    policy = RetryPolicy(sleep=sleep, random=lambda: 0.0, monotonic=lambda: now[0])
    budget = RequestBudget(4, None, policy)
    budget.on_rate_limited(2.0)
    assert budget.limit == 2
    await budget.acquire()  # the task that got the 429: its retry loop waits already
    assert sleep.delays == []
    await asyncio.create_task(budget.acquire())  # another request waits out the pause
    assert sleep.delays == [2.0]
    budget.release()
    budget.release()
    budget.on_rate_limited(None)  # no Retry-After: no pause, only the narrower width
    budget.on_rate_limited(3600.0)  # beyond max_retry_after: fails fast, no freeze
    assert budget.rate_limited == 3
    for _ in range(20):
        budget.on_success()
    assert budget.limit == 4  # grown back


async def test_jitter_spreads_waiters_above_the_pause() -> None:
    draws = iter([0.0, 0.5, 1.0])
    sleep = NoSleep()
    policy = RetryPolicy(sleep=sleep, random=lambda: next(draws), monotonic=lambda: 0.0)
    budget = RequestBudget(8, None, policy)
    budget.on_rate_limited(1.0)
    for _ in range(3):
        await asyncio.create_task(budget.acquire())  # three other requests
    assert sleep.delays == [1.0, 1.0 + 0.5 * 0.15, 1.0 + 0.15]  # 0.1 x 1 s + 0.05 s spread


async def test_the_token_bucket_paces_requests() -> None:
    now = [0.0]
    sleep = NoSleep()

    async def advancing(delay: float) -> None:
        await sleep(delay)
        now[0] += delay

    policy = RetryPolicy(sleep=advancing, monotonic=lambda: now[0])
    budget = RequestBudget(100, 10.0, policy, burst=5)
    for _ in range(25):
        await budget.acquire()
        budget.release()
    # A burst of 5 at once, then one every 0.1 s: 20 more take 2 s.
    assert now[0] == pytest.approx(2.0)
    assert len(sleep.delays) == 20


async def test_round_robin_serves_a_small_scan_beside_big_ones() -> None:
    sleep = NoSleep()
    policy = RetryPolicy(sleep=sleep, random=lambda: 0.0)
    big = jobs(8, 10_000)
    small = SimJob(job_id="bjb-small", total_items=300)
    async with Simulator(jobs=[*big, small], faults=Faults(latency_ms=1)) as sim:
        async with BatchClient(
            api_key=sim.api_key, base_url=sim.base_url, retry=policy, max_concurrency=8
        ) as client:
            bigs = asyncio.gather(
                *(scan_all(client, [j.job_id], page_size=100, concurrency=8) for j in big)
            )
            await asyncio.sleep(0.05)  # the big scans fill the budget's queue first
            mark = sim.stats.requests
            got = await scan_all(client, ["bjb-small"], page_size=100, concurrency=8)
            served = sim.stats.requests - mark
            await bigs
        assert got["bjb-small"] == sim.item_ids("bjb-small")
        total = sim.stats.requests
    # 4 small pages (+1 end probe) behind 8 busy flows: a few rounds, not the backlog.
    assert served < 0.12 * total


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 2.5}, "max_concurrency"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": float("inf")}, "rate_limit"),
    ],
)
def test_bad_budgets_are_configuration_errors(kw: dict[str, object], match: str) -> None:
    build: Callable[..., BatchClient] = BatchClient
    with pytest.raises(ConfigurationError, match=match):
        build(api_key="k", **kw)


def test_defaults_are_documented() -> None:
    budget = BatchClient(api_key="k").budget
    assert (budget.max_concurrency, budget.rate_limit) == (64, None)

"""A worker pool on a ``Checkpoint``: N workers finish items out of order, the
pool is killed (cancelled) at random points, a new pool resumes from the state
saved after every ack, and every item is acknowledged exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from aiobatch import BatchClient, Checkpoint, RetryPolicy
from aiobatch.testing import SimBatch, SimClock, SimJob, Simulator

JOB, N, BATCHES = "bjb-pool", 2_640, 333
T0 = 1_800_000_000.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        jobs=[SimJob(job_id=JOB, total_items=N, seed=11)], clock=SimClock.frozen_at(T0)
    ) as s:
        for i in range(BATCHES):
            s.batches.add(SimBatch(batch_id=f"bat-{i:04d}", created_at=T0 - 50_000 + i, files=1))
        yield s


class Pool:
    """What a user writes: a queue, N workers, the state saved after each ack."""

    def __init__(self, rng: random.Random, workers: int) -> None:
        self.rng = rng
        self.workers = workers
        self.saved = ""
        self.acks: Counter[str] = Counter()
        self.handed: Counter[str] = Counter()

    async def run(
        self, scan: Callable[[Checkpoint], Any], key: Callable[[Any], str], kill_after: int | None
    ) -> bool:
        """One life of the pool; True when it saw the scan's end."""
        cp = Checkpoint.from_json(self.saved) if self.saved else Checkpoint(max_pending=200)
        send, recv = anyio.create_memory_object_stream[Any](16)
        finished = False
        with anyio.CancelScope() as life:

            async def worker(jobs: MemoryObjectReceiveStream[Any]) -> None:
                async with jobs:
                    async for x in jobs:
                        for _ in range(self.rng.randrange(6)):  # out of order
                            await asyncio.sleep(0)
                        cp.ack(x)
                        self.acks[key(x)] += 1
                        self.saved = cp.to_json()
                        if kill_after is not None and sum(self.acks.values()) >= kill_after:
                            life.cancel()  # kill -9, as far as the pool can tell

            async with anyio.create_task_group() as tg:
                for _ in range(self.workers):
                    tg.start_soon(worker, recv.clone())
                recv.close()
                async with send, scan(cp) as items:
                    async for x in items:
                        self.handed[key(x)] += 1
                        await send.send(x)
                finished = True
        return finished and not life.cancelled_caught


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_killed_pool_resumed_from_its_checkpoint_acks_every_item_once(
    sim: Simulator, policy: RetryPolicy, seed: int
) -> None:
    rng = random.Random(seed)
    pool = Pool(rng, workers=rng.randrange(3, 9))
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as client:
        truth = [i.item_id async for i in client.job_items.iter(JOB)]

        def scan(cp: Checkpoint) -> Any:
            return client.job_items.iter(JOB, page_size=rng.choice([50, 100, 500]), checkpoint=cp)

        lives = 0
        kills = sorted(rng.sample(range(1, N), 5))
        while not await pool.run(scan, lambda i: i.item_id, kills.pop(0) if kills else None):
            lives += 1
    assert lives == 5
    assert pool.acks == Counter(truth)  # every item acknowledged, each exactly once
    assert sum(pool.handed.values()) > N  # work in flight at a kill was handed out again


async def test_a_cursor_listing_pool_acks_every_batch_once(
    sim: Simulator, policy: RetryPolicy
) -> None:
    rng = random.Random(9)
    pool = Pool(rng, workers=5)
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as client:
        truth = [b.id async for b in client.batches.iter()]

        def scan(cp: Checkpoint) -> Any:
            return client.batches.iter(page_size=rng.choice([7, 20, 100]), checkpoint=cp)

        kills = sorted(rng.sample(range(1, BATCHES), 4))
        while not await pool.run(scan, lambda b: b.id, kills.pop(0) if kills else None):
            pass
    assert pool.acks == Counter(truth)

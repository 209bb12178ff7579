"""v2 results against the simulator as it now follows the contract: large results
from its object storage (a second listener, which refuses a request carrying the
API key) when the inline answer is refused (413) or empty; fast-tier refusals;
null results for a while after the batch ended."""

from __future__ import annotations

import pytest

from aiobatch import BatchClient, RetryPolicy
from aiobatch.testing import Faults, SimBatch, SimClock, Simulator

T0 = 1_800_000_000.0


async def contents(sim: Simulator, policy: RetryPolicy, result: str) -> dict[str, bytes | str]:
    async with BatchClient(sim.api_key, base_url=sim.base_url, retry=policy) as c:
        got: dict[str, bytes | str] = {}
        async for r in c.batches.iter_results("bat-big", result=result):
            got[r.file_id] = b"".join(r.content.chunks()) if r.content else str(r.error)
        return got


@pytest.mark.parametrize("result", ["markdown", "text", "json"])
@pytest.mark.parametrize("over", ["error", "empty"])
async def test_inline_over_the_limit_comes_from_storage(
    policy: RetryPolicy, no_env: None, over: str, result: str
) -> None:
    async with Simulator(clock=SimClock.frozen_at(T0)) as sim:
        sim.batches.add(SimBatch(batch_id="bat-big", files=12, created_at=T0 - 600))
        inline = await contents(sim, policy, result)
        sim.faults = Faults(inline_result_limit=64, inline_over_limit=over)  # type: ignore[arg-type]
        stored = await contents(sim, policy, result)
        storage = list(sim.storage_requests)
    assert stored == inline
    assert any(isinstance(v, bytes) and v for v in stored.values())
    assert storage
    for req in storage:
        assert "Authorization" not in req.headers
        assert str(sim.api_key) not in repr(req.headers)


async def test_fast_tier_batches_say_so_and_text_works(policy: RetryPolicy, no_env: None) -> None:
    async with Simulator(clock=SimClock.frozen_at(T0)) as sim:
        sim.batches.add(SimBatch(batch_id="bat-big", files=6, created_at=T0 - 600, tier="fast"))
        async with BatchClient(sim.api_key, base_url=sim.base_url, retry=policy) as c:
            md = [r async for r in c.batches.iter_results("bat-big")]
            text = [r async for r in c.batches.iter_results("bat-big", result="text")]
    assert {r.error.kind for r in md if r.error and r.job_reference} <= {
        "unsupported_tier",
        "failed",
        "missing",
    }
    assert any(r.error and r.error.kind == "unsupported_tier" for r in md)
    assert any(r.content is not None for r in text)


async def test_null_results_after_the_end_are_waited_for(no_env: None) -> None:
    async with Simulator(clock=SimClock.frozen_at(T0)) as sim:
        sim.batches.add(SimBatch(batch_id="bat-big", files=4, created_at=T0))  # ends at ~T0+2
        sim.faults = Faults(results_delay=30.0)

        async def sleep(delay: float) -> None:
            sim.advance(delay)

        policy = RetryPolicy(sleep=sleep, monotonic=lambda: sim.clock.now(), random=lambda: 0.0)
        async with BatchClient(sim.api_key, base_url=sim.base_url, retry=policy) as c:
            got = [r async for r in c.batches.iter_results("bat-big", wait=True, timeout=300)]
    assert len(got) == 4

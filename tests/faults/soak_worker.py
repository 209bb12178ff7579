"""The soak of case 22, run in a subprocess by ``test_fault_soak.py``::

    PYTHONASYNCIODEBUG=1 python -W error::ResourceWarning soak_worker.py SCANS

Runs SCANS small scans against an in-process simulator, through faults, with
early ``break``s, cancellations and a fresh client every ``PER_CLIENT`` scans,
and prints one JSON object: the open file descriptors and asyncio tasks
measured each time a client has finished its scans and again once it has
closed, and every problem asyncio or the
interpreter reported (unclosed resources, unretrieved exceptions, unraisable
errors).  Not a test module itself (no ``test_`` prefix).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
import warnings
from typing import Any

import anyio

from aiobatch import AiobatchError, BatchClient, RetryPolicy
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

PER_CLIENT = 100
JOBS = [SimJob(job_id=f"bjb-soak-{k}", total_items=15 + 9 * k, seed=k) for k in range(8)]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle() -> None:
    """Let closed connections finish closing on both ends."""
    for _ in range(5):
        await asyncio.sleep(0.01)
    gc.collect()


async def soak(scans: int) -> dict[str, Any]:
    problems: list[str] = []
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 60.0  # debug mode: no "slow callback" noise
    loop.set_exception_handler(lambda _loop, ctx: problems.append(str(ctx.get("message"))))

    def unraisable(info: Any) -> None:
        problems.append(f"unraisable: {info.exc_type.__name__}: {info.exc_value}")

    sys.unraisablehook = unraisable

    async def no_sleep(delay: float) -> None:
        await asyncio.sleep(0)

    policy = RetryPolicy(sleep=no_sleep, random=lambda: 0.0)
    faults = Faults(
        rate_limit=Trigger(every=11),
        retry_after="0",
        server_error=Trigger(every=13),
        truncate=Trigger(every=29),
    )
    truth: dict[str, list[str]] = {}
    fds: list[int] = []  # each time a client has just closed
    tasks: list[int] = []
    live_fds: list[int] = []  # each time a client has just finished its scans
    live_tasks: list[int] = []
    done = items = 0
    started = time.monotonic()
    async with Simulator(JOBS, faults=faults) as sim:
        for job in JOBS:
            truth[job.job_id] = sim.item_ids(job.job_id)
        while done < scans:
            async with BatchClient(sim.api_key, base_url=sim.base_url, retry=policy) as client:
                for _ in range(min(PER_CLIENT, scans - done)):
                    job = JOBS[done % len(JOBS)]
                    kind = done % 5
                    got: list[str] = []
                    if kind == 3:  # break early
                        async for item in client.job_items.iter(job.job_id, page_size=4):
                            got.append(item.item_id)
                            if len(got) == 3:
                                break
                        expected = truth[job.job_id][:3]
                    elif kind == 4:  # cancelled mid-scan
                        with anyio.move_on_after(0.002):
                            async for item in client.job_items.iter(job.job_id, page_size=3):
                                got.append(item.item_id)
                        expected = truth[job.job_id][: len(got)]
                    else:
                        try:
                            async with client.job_items.scan(job.job_id) as pages:
                                async for page in pages:
                                    got.extend(i.item_id for i in page.items)
                        except AiobatchError as exc:  # pragma: no cover - reported below
                            problems.append(f"scan failed: {exc!r}")
                        expected = truth[job.job_id]
                    if got != expected:
                        problems.append(f"scan {done} of {job.job_id}: wrong items")
                    items += len(got)
                    done += 1
                await settle()
                live_fds.append(open_fds())
                live_tasks.append(len(asyncio.all_tasks()))
            await settle()
            fds.append(open_fds())
            tasks.append(len(asyncio.all_tasks()))
    if os.environ.get("SOAK_LEAK"):  # the control run: prove leaks are seen
        import aiohttp

        leaked: Any = aiohttp.ClientSession()
        leaked_task = asyncio.ensure_future(asyncio.sleep(3600))
        del leaked
        tasks.append(len(asyncio.all_tasks()))
        leaked_task.cancel()
    await settle()
    return {
        "scans": done,
        "items": items,
        "fds": fds,
        "tasks": tasks,
        "live_fds": live_fds,
        "live_tasks": live_tasks,
        "fds_after_stop": open_fds(),
        "problems": problems,
        "seconds": round(time.monotonic() - started, 2),
        "debug": loop.get_debug(),
        "resource_warnings_are_errors": any(
            f[0] == "error" and f[2] is ResourceWarning for f in warnings.filters
        ),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(soak(int(sys.argv[1])))))

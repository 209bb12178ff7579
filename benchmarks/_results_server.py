"""The simulator with one parse job for the results benchmark, in its own process.

Prints one JSON line (base_url, api_key, job_id), then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiobatch.testing import Faults, SimClock, SimJob, Simulator


async def serve(items: int, latency_ms: float, big_bytes: int) -> None:
    extra = {"large_result_every": 1, "large_result_bytes": big_bytes} if big_bytes else {}
    job = SimJob(job_id="bjb-bench-results", total_items=items, **extra)  # type: ignore[arg-type]
    faults = Faults(latency_ms=latency_ms)
    async with Simulator([job], faults=faults, clock=SimClock.frozen_at()) as sim:
        print(json.dumps({"base_url": sim.base_url, "api_key": sim.api_key, "job_id": job.job_id}))
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--big-bytes", type=int, default=0)
    a = p.parse_args()
    asyncio.run(serve(a.items, a.latency_ms, a.big_bytes))


if __name__ == "__main__":
    main()

"""Peak memory while streaming a large job, each measurement in a fresh process.

The child imports what it needs, records its RSS (the baseline), streams every
item of the job with ``client.job_items.iter_pages`` keeping nothing but a
count, and reports ``ru_maxrss`` (the kernel's exact peak, no sampling gaps).
"MiB above baseline" is what the scan itself cost.  Run a child by hand with
``python -m benchmarks.memory --child '{"base_url": ..., ...}'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._env import ROOT
from .clients import Endpoint

__all__ = ["measure", "run_memory"]

_MIB = 1024 * 1024


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    import psutil

    from aiobatch import BatchClient

    from ._bodies import Tally, expected_id

    tally = Tally(expected_id(spec["job_id"]), spec["total"])
    baseline = psutil.Process().memory_info().rss
    peak_before = _peak_rss()

    async def scan() -> None:
        async with BatchClient(api_key=spec["api_key"], base_url=spec["base_url"]) as client:
            pages = client.job_items.iter_pages(
                spec["job_id"], page_size=spec["page_size"], concurrency=spec["concurrency"]
            )
            async for page in pages:  # keeps nothing: each page is dropped at once
                items = page.items
                if items:
                    tally.page(items[0].item_id, items[-1].item_id, len(items))

    t0 = time.perf_counter()
    asyncio.run(scan())
    wall = time.perf_counter() - t0
    peak = _peak_rss()
    return {
        "concurrency": spec["concurrency"],
        "page_size": spec["page_size"],
        "baseline_mib": baseline / _MIB,
        "peak_before_scan_mib": peak_before / _MIB,
        "peak_mib": peak / _MIB,
        "above_baseline_mib": max(0, peak - baseline) / _MIB,
        "wall_s": wall,
        "items_per_s": tally.count / wall if wall else None,
        **tally.summary(),
    }


async def measure(
    ep: Endpoint, concurrency: int, page_size: int, *, timeout_s: float = 600.0
) -> dict[str, Any]:
    """One child process streaming the whole job of ``ep``; its JSON report."""
    spec = {
        "base_url": ep.base_url,
        "api_key": ep.api_key,
        "job_id": ep.job_id,
        "total": ep.total,
        "concurrency": concurrency,
        "page_size": page_size,
    }
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.memory",
        "--child",
        json.dumps(spec),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {err.decode()[-2000:]}")
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


async def run_memory(
    ep: Endpoint,
    concurrencies: Sequence[int] = (4, 32),
    *,
    page_size: int = 1000,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """One fresh child per concurrency, one after the other (peaks never mix)."""
    runs = []
    for c in concurrencies:
        r = await measure(ep, c, page_size)
        log(
            f"memory: {ep.total:,} items, page {page_size}, c={c}: peak "
            f"{r['peak_mib']:.1f} MiB, {r['above_baseline_mib']:.1f} MiB above the "
            f"{r['baseline_mib']:.1f} MiB baseline ({'ok' if r['ok'] else r['problems']})"
        )
        runs.append(r)
    return {"items": ep.total, "page_size": page_size, "runs": runs}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))), flush=True)
    else:
        sys.exit("usage: python -m benchmarks.memory --child SPEC_JSON (see run_memory)")

"""Peak memory while streaming a large job, each measurement in a fresh process.

The child imports what it needs, records its RSS (the baseline), streams every
item of the job with ``client.job_items.iter_pages`` keeping nothing but a
count, and reports its peak RSS: the kernel's high-water mark ``VmHWM`` on Linux
(exact, no sampling gaps), else the largest RSS a 5 ms sampling thread saw.
Not ``getrusage().ru_maxrss``: Linux carries the *parent's* RSS at fork into a
child's ``ru_maxrss`` across exec, so a big parent would inflate every child.
"MiB above baseline" is what the scan itself cost.  Run a child by hand with
``python -m benchmarks.memory --child '{"base_url": ..., ...}'``.

The slow-consumer runs (``run_slow_memory``) sleep after every page, so the
scan's read-ahead fills up and stays full: its peak must not grow with the job
size, and stays within the pages it may hold, ``2 * concurrency + 3`` (the
requested-but-not-handed-out window, 2 waiting in the stream, 1 being consumed).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ._env import ROOT
from .clients import Endpoint

if TYPE_CHECKING:
    from .scan import ServerFactory

__all__ = ["SlowConsumerPlan", "decoded_page_bytes", "measure", "run_memory", "run_slow_memory"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SlowConsumerPlan:
    """Job sizes streamed by a consumer that sleeps after each page (simulator at 0 ms).

    The smallest job should span several read-ahead windows (``2c + 3`` pages),
    so that both runs reach the steady state."""

    items: tuple[int, ...] = (100_000, 1_000_000)
    page_size: int = 1000
    concurrency: int = 16
    sleep_per_page_s: float = 0.005


def _hwm() -> int | None:
    """Linux: this address space's peak RSS in bytes (reset by exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class _Sampler(threading.Thread):
    """The largest RSS seen every ``interval`` seconds (where VmHWM is missing)."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._done = threading.Event()
        self.peak: int = self._proc.memory_info().rss

    def run(self) -> None:
        while not self._done.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def stop(self) -> int:
        self._done.set()
        self.join()
        rss: int = self._proc.memory_info().rss
        return max(self.peak, rss)


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    import psutil

    from aiobatch import BatchClient

    from ._bodies import Tally, expected_id

    tally = Tally(expected_id(spec["job_id"]), spec["total"])
    sleep = float(spec.get("sleep_per_page_s", 0.0))
    baseline = psutil.Process().memory_info().rss
    peak_before = _hwm()
    sampler = _Sampler()
    sampler.start()

    async def scan() -> None:
        async with BatchClient(api_key=spec["api_key"], base_url=spec["base_url"]) as client:
            pages = client.job_items.iter_pages(
                spec["job_id"], page_size=spec["page_size"], concurrency=spec["concurrency"]
            )
            async for page in pages:  # keeps nothing: each page is dropped at once
                items = page.items
                if items:
                    tally.page(items[0].item_id, items[-1].item_id, len(items))
                if sleep:  # a slow consumer: the read-ahead fills up while it sleeps
                    await asyncio.sleep(sleep)

    t0 = time.perf_counter()
    asyncio.run(scan())
    wall = time.perf_counter() - t0
    sampled = sampler.stop()
    hwm = _hwm()
    peak = hwm if hwm is not None else sampled
    return {
        "concurrency": spec["concurrency"],
        "page_size": spec["page_size"],
        "total": spec["total"],
        "sleep_per_page_s": sleep,
        "peak_source": "VmHWM" if hwm is not None else "sampled every 5 ms",
        "baseline_mib": baseline / _MIB,
        "peak_before_scan_mib": None if peak_before is None else peak_before / _MIB,
        "peak_mib": peak / _MIB,
        "sampled_peak_mib": sampled / _MIB,
        "above_baseline_mib": max(0, peak - baseline) / _MIB,
        "wall_s": wall,
        "items_per_s": tally.count / wall if wall else None,
        **tally.summary(),
    }


async def measure(
    ep: Endpoint,
    concurrency: int,
    page_size: int,
    *,
    sleep_per_page_s: float = 0.0,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """One child process streaming the whole job of ``ep``; its JSON report."""
    spec = {
        "sleep_per_page_s": sleep_per_page_s,
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


def decoded_page_bytes(page_size: int) -> tuple[int, int]:
    """(JSON body bytes, bytes its aiobatch models hold) of one page of ``page_size``
    items, the latter traced by ``tracemalloc`` while the decoded page is alive."""
    import gc
    import tracemalloc

    from aiobatch import models

    from ._bodies import page_body

    body = page_body(page_size)
    models.decode(models.BatchItemListResponse, body)  # build the decoder first
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        page = models.decode(models.BatchItemListResponse, body)
        decoded = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(page.items) == page_size
    return len(body), decoded


async def run_slow_memory(
    plan: SlowConsumerPlan,
    server: ServerFactory,
    *,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """One fresh simulator (0 ms) and child per job size of ``plan``, one after the other."""
    body_bytes, decoded = decoded_page_bytes(plan.page_size)
    runs = []
    for items in plan.items:
        async with server(items, 0.0) as ep:
            r = await measure(
                ep, plan.concurrency, plan.page_size, sleep_per_page_s=plan.sleep_per_page_s
            )
        log(
            f"memory, slow consumer: {items:,} items, page {plan.page_size}, "
            f"c={plan.concurrency}, {plan.sleep_per_page_s * 1e3:g} ms per page: peak "
            f"{r['peak_mib']:.1f} MiB, {r['above_baseline_mib']:.1f} MiB above baseline "
            f"({'ok' if r['ok'] else r['problems']})"
        )
        runs.append(r)
    return {
        **asdict(plan),
        "page_body_bytes": body_bytes,
        "decoded_page_bytes": decoded,
        "decoded_factor": decoded / body_bytes,
        "runs": runs,
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))), flush=True)
    else:
        sys.exit("usage: python -m benchmarks.memory --child SPEC_JSON (see run_memory)")

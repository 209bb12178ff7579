"""End-to-end scans of one simulated job, every client side by side.

For each server latency a fresh simulator is started (by default in its own
process, so the client's CPU is its own); for each page size the server's page
cache is primed by one untimed scan and every client warms up on one page.
Then the cells (client x concurrency) run in interleaved rounds: within a
round, the clients at one concurrency run back to back in an order that
rotates from round to round.  Each run records wall time, the client's CPU
time (this whole process, user + sys: the scan and the thread that drains the
simulator's output), the server's CPU time (a server near 100% of a core limits everyone) and
whether the client returned exactly the expected ids.

Whether the API sends ``total_size`` on the item listing is not published, so
the clients that can scan without it (``no_total_clients``; the SDK cannot: it
stops after the first page) run a second time against a simulator that omits it;
those cells carry ``"total_size": false``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import psutil

from aiobatch.testing import Faults, SimClock, SimJob, Simulator, SimulatorProcess

from ._bodies import Tally, expected_id
from ._timing import Rounds, rotate
from .clients import CLIENTS, DEFAULTS, Client, Endpoint

__all__ = [
    "ScanPlan",
    "ServerFactory",
    "inprocess_server",
    "run_once",
    "run_scans",
    "subprocess_server",
]


class ServerFactory(Protocol):
    """A simulator serving one job of ``items`` items at ``latency_ms``."""

    def __call__(
        self, items: int, latency_ms: float, *, total_size: bool = True
    ) -> AbstractAsyncContextManager[Endpoint]: ...


Cell = tuple[str, int]  # (client name, concurrency)


@dataclass(frozen=True, slots=True)
class ScanPlan:
    items: int = 100_000
    latencies_ms: tuple[float, ...] = (0.0, 20.0, 50.0)
    page_sizes: tuple[int, ...] = (100, 1000)
    concurrencies: tuple[int, ...] = (1, 4, 16, 32)
    clients: tuple[str, ...] = (
        "aiobatch",
        "aiobatch-iter",
        "aiobatch-defaults",
        "bare",
        "sdk-httpx",
        "sdk-aiohttp",
    )
    #: These run again against a server that omits ``total_size`` (empty: skip).
    no_total_clients: tuple[str, ...] = ("aiobatch", "aiobatch-iter", "aiobatch-defaults", "bare")
    #: At most this many runs per cell; fewer once a cell spent ``budget_s``.
    rounds: int = 5
    budget_s: float = 6.0
    run_timeout_s: float = 900.0


@asynccontextmanager
async def subprocess_server(
    items: int, latency_ms: float, *, total_size: bool = True
) -> AsyncIterator[Endpoint]:
    """``python -m aiobatch.testing`` in its own process (``SimulatorProcess``)."""
    # Room in the page cache for every page size a run scans (100, 500 for the
    # defaults, 1000): a cache smaller than one job's pages would hit for none,
    # and whichever client ran after another page size would pay the rendering.
    args = ["--page-cache-mb", "256"]
    if latency_ms:
        args += ["--latency-ms", f"{latency_ms:g}"]
    if not total_size:
        args.append("--no-total-size")
    async with SimulatorProcess(items=items, args=args) as proc:
        yield Endpoint(proc.base_url, proc.api_key, proc.job_ids[0], items, proc.pid)


@asynccontextmanager
async def inprocess_server(
    items: int, latency_ms: float, *, total_size: bool = True
) -> AsyncIterator[Endpoint]:
    """The simulator in this event loop: for the smoke test only (shared CPU)."""
    job = SimJob(job_id="bjb-bench-scan", total_items=items)
    faults = Faults(latency_ms=latency_ms)
    sim = Simulator([job], faults=faults, clock=SimClock.frozen_at(), total_size=total_size)
    async with sim:
        yield Endpoint(sim.base_url, sim.api_key or "", job.job_id, items, None)


def _cpu(proc: Any) -> float | None:
    if proc is None:
        return None
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


async def run_once(
    client: Client, ep: Endpoint, page_size: int, concurrency: int, timeout_s: float = 900.0
) -> dict[str, Any]:
    """One timed scan of the whole job; JSON-ready."""
    tally = Tally(expected_id(ep.job_id), ep.total)
    server = psutil.Process(ep.pid) if ep.pid is not None else None
    error = None
    gc.collect()
    # process_time(): user + sys CPU of this whole process (every thread).
    s0, c0, t0 = _cpu(server), time.process_time(), time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await client.scan(ep, page_size, concurrency, tally)
    except Exception as exc:  # recorded, never hidden: the cell is marked failed
        error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    s1 = _cpu(server)
    out = tally.summary()
    if error is not None:
        out["ok"] = False
        out["problems"] = [error, *tally.verdict()]
    return {
        "wall_s": wall,
        "client_cpu_s": cpu,
        "server_cpu_s": None if s0 is None or s1 is None else s1 - s0,
        **out,
    }


def _cells(plan: ScanPlan) -> dict[int, list[Cell]]:
    """Clients grouped by concurrency; those with a fixed one sit with the lowest."""
    low = min(plan.concurrencies)
    groups: dict[int, list[Cell]] = {c: [] for c in plan.concurrencies}
    for name in plan.clients:
        fixed = CLIENTS[name].fixed_concurrency
        if fixed is None:
            for c in plan.concurrencies:
                groups[c].append((name, c))
        else:
            groups[low].append((name, fixed))
    return groups


def _order(groups: dict[int, list[Cell]]) -> Callable[[int], list[Cell]]:
    return lambda r: [cell for c in sorted(groups) for cell in rotate(groups[c], r)]


async def _group(
    plan: ScanPlan, ep: Endpoint, latency: float, page_size: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    # Prime the server's page cache with the floor at full concurrency (at the
    # no-options client's page size too), then warm each client up on one page
    # (imports, connection code, decoders).
    sizes = {page_size, *(DEFAULTS.page_size for n in plan.clients if n == "aiobatch-defaults")}
    for size in sorted(sizes):
        await CLIENTS["bare"].scan(ep, size, max(plan.concurrencies), Tally(str, ep.total))
    for name in plan.clients:
        await CLIENTS[name].warm(ep, page_size)
    groups = _cells(plan)
    sched: Rounds[Cell] = Rounds(
        _order(groups), rounds=plan.rounds, budget_s=plan.budget_s, min_samples=1
    )
    runs: dict[Cell, list[dict[str, Any]]] = {}
    for cell in sched:
        name, conc = cell
        run = await run_once(CLIENTS[name], ep, page_size, conc, plan.run_timeout_s)
        sched.record(cell, run["wall_s"])
        runs.setdefault(cell, []).append(run)
        flag = "" if run["ok"] else f"  WRONG: {run['problems'][:2]}"
        log(
            f"  {latency:g} ms  page {page_size:<5} {name:<17} c={conc:<3} "
            f"{run['wall_s']:7.2f} s  {ep.total / run['wall_s']:>10,.0f} items/s{flag}"
        )
    cells: list[dict[str, Any]] = []
    for cell, cell_runs in runs.items():
        name, conc = cell
        series = sched.series[cell]
        correct = all(r["ok"] for r in cell_runs)
        best = min(cell_runs, key=lambda r: r["wall_s"])
        server_cpu = best["server_cpu_s"]
        # The least CPU any run of the cell took: less noisy than the best-wall run's.
        cpu_min = min(r["client_cpu_s"] for r in cell_runs)
        cells.append(
            {
                "latency_ms": latency,
                "page_size": page_size,
                "client": name,
                "concurrency": conc,
                "correct": correct,
                **series.summary(),
                "items_per_s": ep.total / series.best if correct else None,
                "median_items_per_s": ep.total / series.median if correct else None,
                "client_cpu_s": best["client_cpu_s"],
                "client_cpu_share": best["client_cpu_s"] / best["wall_s"],
                "client_cpu_min_s": cpu_min,
                "client_cpu_s_per_m_items": cpu_min / ep.total * 1e6 if correct else None,
                "server_cpu_s": server_cpu,
                "server_cpu_share": None if server_cpu is None else server_cpu / best["wall_s"],
                "runs": cell_runs,
            }
        )
    return cells


async def run_scans(
    plan: ScanPlan,
    *,
    server: ServerFactory = subprocess_server,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Every (latency, page size, client, concurrency) cell of ``plan``."""
    unknown = set(plan.clients) - set(CLIENTS)
    if unknown:
        raise ValueError(f"unknown clients {sorted(unknown)}; choose from {sorted(CLIENTS)}")
    unknown = set(plan.no_total_clients) - set(plan.clients)
    if unknown:
        raise ValueError(f"no_total_clients {sorted(unknown)} are not among the plan's clients")
    without = dataclasses.replace(plan, clients=plan.no_total_clients)
    cells: list[dict[str, Any]] = []
    for latency in plan.latencies_ms:
        for total_size, sub in ((True, plan), (False, without)):
            if not sub.clients:
                continue
            async with server(plan.items, latency, total_size=total_size) as ep:
                what = "" if total_size else ", no total_size"
                log(f"scan: {ep.total:,} items at {latency:g} ms{what}, server pid {ep.pid}")
                for page_size in plan.page_sizes:
                    group = await _group(sub, ep, latency, page_size, log)
                    cells += [{**c, "total_size": total_size} for c in group]
    return {
        **asdict(plan),
        "server": getattr(server, "__name__", str(server)),
        "defaults": {"page_size": DEFAULTS.page_size, "concurrency": DEFAULTS.concurrency},
        "cells": cells,
    }

"""The round trip a scan spends learning its listing's length, and what knowing it saves.

A fresh scan sends its first page alone: its ``total_size`` plans the rest (a
one-page job then costs one request plus the end probe, never a spray of
speculative requests).  On a job of a few rounds that is one round more than
the bare loop, which is handed the total: 8 rounds instead of 7 for 100 pages
at c=16.  Once the client has read the job's counts (``jobs.get`` or
``jobs.wait`` before the scan, the usual flow), the first wave goes out at once.

Three candidates, side by side in interleaved rounds against the simulator in
its own process: ``cold`` (a fresh client, timed like the main scan table),
``known`` (a fresh client that called ``jobs.get`` first; the timer starts
after that call, as the status was read while waiting for the job anyway) and
the bare loop.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiobatch import BatchClient

from ._bodies import Tally, expected_id
from .clients import CLIENTS, Endpoint
from .scan import ServerFactory, subprocess_server

__all__ = ["FirstWavePlan", "run_first_wave"]


@dataclass(frozen=True, slots=True)
class FirstWavePlan:
    items: int = 100_000
    latency_ms: float = 50.0
    page_sizes: tuple[int, ...] = (1000, 100)
    concurrencies: tuple[int, ...] = (16, 32)
    rounds: int = 3


async def _aiobatch(ep: Endpoint, page: int, conc: int, *, known: bool) -> tuple[float, bool]:
    tally = Tally(expected_id(ep.job_id), ep.total)
    async with BatchClient(api_key=ep.api_key, base_url=ep.base_url) as client:
        if known:
            await client.jobs.get(ep.job_id)
        t0 = time.perf_counter()
        async for p in client.job_items.iter_pages(ep.job_id, page_size=page, concurrency=conc):
            if p.items:
                tally.page(p.items[0].item_id, p.items[-1].item_id, len(p.items))
        wall = time.perf_counter() - t0
    return wall, bool(tally.summary()["ok"])


async def _bare(ep: Endpoint, page: int, conc: int) -> tuple[float, bool]:
    tally = Tally(expected_id(ep.job_id), ep.total)
    t0 = time.perf_counter()
    await CLIENTS["bare"].scan(ep, page, conc, tally)
    return time.perf_counter() - t0, bool(tally.summary()["ok"])


async def _cell(ep: Endpoint, page: int, conc: int, rounds: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {"cold": [], "known": [], "bare": []}
    ok = True
    for r in range(rounds):
        order = ["cold", "known", "bare"]
        for name in order[r % 3 :] + order[: r % 3]:
            gc.collect()
            if name == "bare":
                wall, good = await _bare(ep, page, conc)
            else:
                wall, good = await _aiobatch(ep, page, conc, known=name == "known")
            walls[name].append(wall)
            ok = ok and good
    best = {k: min(v) for k, v in walls.items()}
    return {
        "page_size": page,
        "concurrency": conc,
        "correct": ok,
        "best_s": best,
        "items_per_s": {k: ep.total / v for k, v in best.items()},
        "cold_vs_bare": best["bare"] / best["cold"],
        "known_vs_bare": best["bare"] / best["known"],
    }


async def run_first_wave(
    plan: FirstWavePlan,
    *,
    server: ServerFactory = subprocess_server,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    cells = []
    async with server(plan.items, plan.latency_ms) as ep:
        for page in plan.page_sizes:  # prime the server's page cache
            await CLIENTS["bare"].scan(ep, page, 32, Tally(str, ep.total))
        for page in plan.page_sizes:
            for conc in plan.concurrencies:
                cell = await _cell(ep, page, conc, plan.rounds)
                log(
                    f"first wave: {plan.latency_ms:g} ms, page {page}, c={conc}: cold "
                    f"{cell['cold_vs_bare']:.2f}x bare, size known {cell['known_vs_bare']:.2f}x "
                    f"bare{'' if cell['correct'] else '  WRONG ITEMS'}"
                )
                cells.append(cell)
    return {**asdict(plan), "cells": cells}


# --- report ------------------------------------------------------------------------


def first_wave_text(fw: dict[str, Any]) -> list[str]:
    out = [
        "",
        f"FIRST WAVE at {fw['latency_ms']:g} ms, {fw['items']:,} items: a fresh scan learns the "
        "total from its first page (one round trip); after jobs.get it plans the first wave "
        "from the job's total_items (items/s, best of N)",
        f"{'page':>5} {'c':>3} {'cold':>10} {'size known':>11} {'bare':>10} {'cold×':>7} "
        f"{'known×':>7}",
    ]
    for c in fw["cells"]:
        ips = c["items_per_s"]
        flag = "" if c["correct"] else "  WRONG ITEMS"
        out.append(
            f"{c['page_size']:>5} {c['concurrency']:>3} {ips['cold']:>10,.0f} "
            f"{ips['known']:>11,.0f} {ips['bare']:>10,.0f} {c['cold_vs_bare']:>6.2f}× "
            f"{c['known_vs_bare']:>6.2f}×{flag}"
        )
    return out


def first_wave_markdown(fw: dict[str, Any]) -> list[str]:
    md = [
        f"**The first round trip** ({fw['latency_ms']:g} ms, {fw['items']:,} items; items/s): "
        "a fresh scan sends its first page alone and plans the rest from its `total_size`; "
        "after `jobs.get` / `jobs.wait` the first wave is planned from the job's "
        "`total_items`.",
        "",
        "| page | c | aiobatch, fresh | aiobatch, size known | bare loop | fresh vs bare | "
        "known vs bare |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in fw["cells"]:
        ips = c["items_per_s"]
        md.append(
            f"| {c['page_size']} | {c['concurrency']} | {ips['cold']:,.0f} | "
            f"{ips['known']:,.0f} | {ips['bare']:,.0f} | {c['cold_vs_bare']:.2f}× | "
            f"**{c['known_vs_bare']:.2f}×** |"
        )
    return [*md, ""]


def first_wave_verdicts(fw: dict[str, Any]) -> list[tuple[str, float, bool]]:
    """(name, measured, correct) per cell for the "size known" target (>= 0.95x bare)."""
    return [
        (
            f"scan {fw['latency_ms']:g} ms, page {c['page_size']}, c={c['concurrency']}, size "
            "known (after jobs.get): aiobatch vs the bare loop",
            c["known_vs_bare"],
            c["correct"],
        )
        for c in fw["cells"]
    ]

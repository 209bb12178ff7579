"""Where a scan's client CPU goes, per page: aiobatch against the bare loop.

Separate, instrumented runs (the timed scan table is never instrumented): the
synchronous steps of a page are timed with ``thread_time`` as they run (the
thread's CPU clock: on a shared machine a wall clock also counted the time the
process was preempted, and the steps of one client could add up to more than
its whole CPU), and the process's user + system CPU over the whole scan is
read from ``getrusage``.  What is left after
the named steps is the HTTP exchange (aiohttp, the socket calls), the event
loop and the consumer, for both clients.

* ``decode``: the page's JSON into msgspec Structs (aiobatch) or built-ins (bare);
* ``duplicate check``: ``SeenKeys`` remembering the page's item ids and forgetting
  those past the window;
* ``planner + pages``: the rest of recording a page with the planner and building
  the ``Page`` handed out (``_Walk._accept`` minus the duplicate check).

``aiobatch+hooks`` is the same scan with a no-op hook on every event name: the
cost of being observed (``aiobatch`` has no hooks: the cost of not being).
"""

from __future__ import annotations

import contextlib
import gc
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec

from aiobatch import BatchClient, models
from aiobatch._paging import seen, walk
from aiobatch.events import EVENT_NAMES, Event
from aiobatch.models import BatchItemListResponse

from ._bodies import Tally, expected_id
from .clients import Endpoint, scan_aiobatch, scan_bare
from .layers import LAYERS, profile_layers
from .scan import ServerFactory, subprocess_server

__all__ = ["COUNTS", "CpuPlan", "cpu_markdown", "cpu_text", "run_cpu_profile"]

#: What "client CPU" is, everywhere the bench reports it.
COUNTS = (
    "client CPU = user + sys CPU of the client process over the whole scan (getrusage / "
    "process_time; the simulator runs in its own process): opening and closing the client, "
    "every request the scan sends (pages, the end probe, any confirmation of an empty page, "
    "the job's counts when the listing has no total), decoding, the duplicate check, the "
    "planner, the consumer's tally, and the thread that drains the simulator's output"
)

STEPS = ("decode", "duplicate check", "planner + pages")
#: aiobatch as it ships, aiobatch with a no-op hook on every event, the bare loop.
CLIENT_NAMES = ("aiobatch", "aiobatch+hooks", "bare")


@dataclass(frozen=True, slots=True)
class CpuPlan:
    items: int = 100_000
    page_sizes: tuple[int, ...] = (100, 1000)
    concurrency: int = 16
    rounds: int = 5


@dataclass(slots=True)
class _Clock:
    spent: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        spent = self.spent

        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.thread_time() - t0

        return run


@contextlib.contextmanager
def _instrumented(clock: _Clock) -> Iterator[None]:
    """aiobatch's page steps timed (patched for this block only)."""
    decoders = models._decoders
    saved_decoder = decoders.pop(BatchItemListResponse, None)
    decoders[BatchItemListResponse] = clock.timed(
        "decode", models._build_decoder(BatchItemListResponse)
    )
    patched = [
        (seen.SeenKeys, "add_if_new", "duplicate check"),
        (seen.SeenKeys, "delivered", "duplicate check"),
        (walk._Walk, "_accept", "accept"),
    ]
    originals = [(cls, name, getattr(cls, name)) for cls, name, _ in patched]
    try:
        for (cls, name, step), (_, _, fn) in zip(patched, originals, strict=True):
            setattr(cls, name, clock.timed(step, fn))
        yield
    finally:
        for cls, name, fn in originals:
            setattr(cls, name, fn)
        decoders.pop(BatchItemListResponse, None)
        if saved_decoder is not None:
            decoders[BatchItemListResponse] = saved_decoder


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _ignore(event: Event) -> None:
    return None


#: A hook on every event: what a client that is observed pays (the events are
#: built and delivered; the hook itself does nothing).
HOOKED = {name: [_ignore] for name in EVENT_NAMES}


async def _aiobatch(
    ep: Endpoint, page: int, conc: int, clock: _Clock, *, hooks: bool = False
) -> bool:
    tally = Tally(expected_id(ep.job_id), ep.total)
    with _instrumented(clock):
        async with BatchClient(
            api_key=ep.api_key, base_url=ep.base_url, event_hooks=HOOKED if hooks else None
        ) as client:
            pages = client.job_items.iter_pages(ep.job_id, page_size=page, concurrency=conc)
            async for p in pages:
                if p.items:
                    tally.page(p.items[0].item_id, p.items[-1].item_id, len(p.items))
    return bool(tally.summary()["ok"])


async def _aiobatch_hooked(ep: Endpoint, page: int, conc: int, clock: _Clock) -> bool:
    return await _aiobatch(ep, page, conc, clock, hooks=True)


async def _bare(ep: Endpoint, page: int, conc: int, clock: _Clock) -> bool:
    tally = Tally(expected_id(ep.job_id), ep.total)
    await scan_bare(ep, page, conc, tally, decode=clock.timed("decode", msgspec.json.decode))
    return bool(tally.summary()["ok"])


async def _profile(ep: Endpoint, page: int, plan: CpuPlan) -> dict[str, Any]:
    best: dict[str, dict[str, float]] = {}
    ok = True
    for r in range(plan.rounds):
        runs = (("aiobatch", _aiobatch), ("aiobatch+hooks", _aiobatch_hooked), ("bare", _bare))
        for name, scan in runs[:: 1 if r % 2 else -1]:
            clock = _Clock()
            gc.collect()
            c0 = _cpu()
            ok = await scan(ep, page, plan.concurrency, clock) and ok
            total = _cpu() - c0
            if name in best and best[name]["total"] <= total:
                continue
            spent = clock.spent
            dup = spent.get("duplicate check", 0.0)
            steps = {
                "decode": spent.get("decode", 0.0),
                "duplicate check": dup,
                "planner + pages": max(0.0, spent.get("accept", 0.0) - dup),
            }
            if name == "bare":
                steps = {"decode": steps["decode"]}
            best[name] = {"total": total, **steps, "rest": total - sum(steps.values())}
    pages = -(-ep.total // page)
    per_page = {n: {k: v / pages * 1e6 for k, v in b.items()} for n, b in best.items()}
    layers = {
        name: await profile_layers(
            lambda fn=fn: fn(ep, page, plan.concurrency, Tally(str, ep.total)),  # type: ignore[misc]
            pages=pages,
            cpu_s=best[name]["total"],
        )
        for name, fn in (("aiobatch", scan_aiobatch), ("bare", scan_bare))
    }
    return {
        "page_size": page,
        "pages": pages,
        "correct": ok,
        "us_per_page": per_page,
        "layers_us_per_page": layers,
    }


async def run_cpu_profile(
    plan: CpuPlan,
    *,
    server: ServerFactory = subprocess_server,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    rows = []
    async with server(plan.items, 0.0) as ep:
        for page in plan.page_sizes:
            await scan_bare(ep, page, 32, Tally(str, ep.total))  # prime the page cache
            row = await _profile(ep, page, plan)
            a, b = row["us_per_page"]["aiobatch"], row["us_per_page"]["bare"]
            h = row["us_per_page"]["aiobatch+hooks"]
            log(
                f"cpu profile: page {page}: aiobatch {a['total']:.0f} µs/page (decode "
                f"{a['decode']:.0f}, duplicate check {a['duplicate check']:.0f}, planner "
                f"{a['planner + pages']:.0f}, rest {a['rest']:.0f}); with hooks "
                f"{h['total']:.0f}; bare {b['total']:.0f} "
                f"(decode {b['decode']:.0f}, rest {b['rest']:.0f})"
            )
            rows.append(row)
    return {**asdict(plan), "counts": COUNTS, "rows": rows}


# --- report ------------------------------------------------------------------------

_COLUMNS = ("total", *STEPS, "rest")


def cpu_text(prof: dict[str, Any]) -> list[str]:
    out = [
        "",
        f"WHERE THE CLIENT CPU GOES (0 ms, c={prof['concurrency']}, µs per page, least total of "
        f"{prof['rounds']} instrumented runs; rest = HTTP exchange, event loop, consumer)",
        f"{'page':>5} {'client':<15}" + "".join(f"{c:>17}" for c in _COLUMNS),
    ]
    for row in prof["rows"]:
        for name in CLIENT_NAMES:
            v = row["us_per_page"][name]
            out.append(
                f"{row['page_size']:>5} {name:<15}"
                + "".join(f"{v[c]:>17.0f}" if c in v else f"{'—':>17}" for c in _COLUMNS)
            )
    return [*out, f"({prof.get('counts', COUNTS)})", *_layers_text(prof)]


def _layers_text(prof: dict[str, Any]) -> list[str]:
    rows = [r for r in prof["rows"] if "layers_us_per_page" in r]
    if not rows:
        return []
    out = [
        "",
        "BY LAYER (µs per page, cProfile on a CPU clock, shares scaled to the least "
        "uninstrumented CPU above)",
        f"{'layer':<32}" + "".join(f"{_head(r, n):>15}" for r in rows for n in _PAIR),
    ]
    for layer in LAYERS:
        cells = [r["layers_us_per_page"][n][layer] for r in rows for n in _PAIR]
        if any(c >= 0.5 for c in cells):
            out.append(f"{layer:<32}" + "".join(f"{c:>15.0f}" for c in cells))
    return out


_PAIR = ("aiobatch", "bare")


def _head(row: dict[str, Any], name: str) -> str:
    return f"{row['page_size']} {name}"


def cpu_markdown(prof: dict[str, Any]) -> list[str]:
    md = [
        f"**Where the client CPU goes** (0 ms latency, c={prof['concurrency']}, µs per page; "
        "instrumented runs; *rest* is the HTTP exchange, the event loop and the consumer)",
        "",
        "| page | client | total | decode | duplicate check | planner + pages | rest |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in prof["rows"]:
        for name in CLIENT_NAMES:
            v = row["us_per_page"][name]
            cells = " | ".join(f"{v[c]:,.0f}" if c in v else "—" for c in _COLUMNS)
            md.append(f"| {row['page_size']} | {name} | {cells} |")
    md += ["", f"*{prof.get('counts', COUNTS)}.*", ""]
    rows = [r for r in prof["rows"] if "layers_us_per_page" in r]
    if rows:
        md += [
            "**By layer** (µs per page; cProfile on a CPU clock, shares scaled to the "
            "uninstrumented CPU)",
            "",
            "| layer | "
            + " | ".join(f"page {r['page_size']} {n}" for r in rows for n in _PAIR)
            + " |",
            "|---|" + "---:|" * (len(rows) * len(_PAIR)),
        ]
        for layer in LAYERS:
            vals = [r["layers_us_per_page"][n][layer] for r in rows for n in _PAIR]
            if any(c >= 0.5 for c in vals):
                md.append(f"| {layer} | " + " | ".join(f"{c:,.0f}" for c in vals) + " |")
    return [*md, ""]

"""Where each microsecond of a page's client CPU goes, layer by layer.

One scan per client runs under ``cProfile`` with a CPU clock
(``time.process_time``), and every function's own time is charged to the layer
of the file it lives in; a C function (``socket.send``, ``set.update``) is
charged to the layers that called it, in proportion to the time of each call
site.  The profiler inflates Python calls, not the time inside C calls, so the
C time is kept as measured and the Python time is scaled into what is left of
the same scan's uninstrumented CPU (least of the cpu profile's runs): the layer
figures add up to that total and rank the layers honestly, but a single figure
is only as exact as the profiler's overhead is even across Python code.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["LAYERS", "layer_of", "profile_layers"]

#: (layer, path fragments): the first layer whose fragment is in a file's path.
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("planner", ("aiobatch/_paging/plan.py", "aiobatch/_paging/position.py")),
    ("duplicate check", ("aiobatch/_paging/seen.py",)),
    (
        "workers (walk, slots, throttle)",
        (
            "aiobatch/_paging/walk.py",
            "aiobatch/_paging/slots.py",
            "aiobatch/_paging/throttle.py",
            "aiobatch/_paging/endpoint.py",
        ),
    ),
    ("iterator", ("aiobatch/_paging/iterators.py", "aiobatch/_paging/types.py")),
    ("stream hop (anyio)", ("anyio/",)),
    ("retry loop", ("aiobatch/_retry.py",)),
    ("budget + request path", ("aiobatch/_budget.py", "aiobatch/_client.py", "aiobatch/_stats")),
    ("decode", ("aiobatch/_protocol.py", "aiobatch/models", "msgspec")),
    ("transport (aiobatch)", ("aiobatch/_transport.py",)),
    ("HTTP (aiohttp, yarl, sockets)", ("aiohttp/", "yarl/", "multidict/", "selector_events")),
    ("event loop (asyncio)", ("asyncio/", "selectors.py")),
    ("consumer + bench", ("benchmarks/",)),
)
LAYERS = (*(name for name, _ in _RULES), "other")


def layer_of(path: str) -> str:
    for name, fragments in _RULES:
        if any(f in path for f in fragments):
            return name
    return "other"


def _charge(stats: dict[Any, Any]) -> tuple[Counter[str], Counter[str]]:
    """Own time by layer: (Python functions, C functions)."""
    py: Counter[str] = Counter()
    c: Counter[str] = Counter()
    for (path, _, name), (_, _, own, _, callers) in stats.items():
        if path != "~":
            py[layer_of(path)] += own
            continue
        # A C function: charged to its callers' layers, by each call site's time.
        if "msgspec" in name or "decode" in name:
            c["decode"] += own
            continue
        sites = {k: v[2] for k, v in callers.items()}
        weight = sum(sites.values())
        if not weight:
            c[layer_of(name)] += own
            continue
        for (cpath, _, _), t in sites.items():
            c[layer_of(cpath)] += own * t / weight
    return py, c


async def profile_layers(
    scan: Callable[[], Awaitable[Any]], *, pages: int, cpu_s: float
) -> dict[str, float]:
    """µs per page by layer for one profiled run of ``scan``, scaled to ``cpu_s``
    (the uninstrumented CPU of the same scan)."""
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    try:
        await scan()
    finally:
        prof.disable()
    py, c = _charge(pstats.Stats(prof).stats)  # type: ignore[attr-defined]
    in_c = sum(c.values())
    scale = max(0.0, cpu_s - in_c) / (sum(py.values()) or 1.0)
    us = 1e6 / pages
    return {name: (py.get(name, 0.0) * scale + c.get(name, 0.0)) * us for name in LAYERS}

"""Targets (PASS / MISS) and the correctness verdict of a benchmark run.

Every target is a ratio between two candidates measured side by side in the
same run (best of N each), except memory, which is a difference between two
readings of the same process, and request counts, which are counted by the
server.  Targets are reported, never asserted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .first_wave import first_wave_verdicts

__all__ = ["Target", "best_sdk", "correctness", "find_cell", "request_budget", "targets"]

SDKS = ("sdk-httpx", "sdk-aiohttp")
DEFAULTS_CLIENT = "aiobatch-defaults"
#: Clients that run at one concurrency of their own (their cell matches any).
FIXED = (*SDKS, DEFAULTS_CLIENT)
SCAN_COLUMNS = ("aiobatch", "bare", "sdk-httpx", "sdk-aiohttp")
#: aiobatch vs the bare loop: every (latency, page, concurrency) cell of the issue.
VS_BARE_CELLS = tuple(
    (lat, page, conc) for lat in (0.0, 20.0, 50.0) for page in (100, 1000) for conc in (16, 32)
)
VS_BARE = 0.95
#: Client CPU per item, aiobatch / bare, at 0 ms latency, c=16: at most this, by page size.
CPU_VS_BARE = {100: 1.5, 1000: 1.3}
#: A scan of a server that sends no total_size vs the same scan with it (issue 26).
NO_TOTAL_CELLS = tuple(
    (lat, page, conc) for lat in (20.0, 50.0) for page in (100, 1000) for conc in (16, 32)
)
NO_TOTAL_VS_TOTAL = 0.9
#: iter() (item by item) vs iter_pages() on the same scan: at least this.
ITER_CELLS = tuple((lat, page, 16) for lat in (0.0, 20.0, 50.0) for page in (100, 1000))
ITER_VS_PAGES = 0.95
#: No options at all vs the SDK at its CLI's default page size (100), 50 ms: at least.
DEFAULTS_VS_SDK = 40.0
#: Slow-consumer memory: slack over the read-ahead bound, and allowed growth with size.
SLOW_SLACK_MIB = 16.0
SLOW_GROWTH_MIB = 8.0
Op = Literal[">=", "<", "<="]
_SYMBOL = {">=": "≥", "<": "<", "<=": "≤"}


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    measured: float | None
    threshold: float
    op: Op
    unit: str
    detail: str = ""

    @property
    def status(self) -> str:
        if self.measured is None:
            return "N/A"
        m, t = self.measured, self.threshold
        ok = m >= t if self.op == ">=" else m < t if self.op == "<" else m <= t
        return "PASS" if ok else "MISS"

    @property
    def want(self) -> str:
        return f"{_SYMBOL[self.op]} {self.threshold:g}{self.unit}"

    @property
    def got(self) -> str | None:
        """The measurement as shown: a count as an integer, else 2 decimals, or more
        where 2 would round it onto the threshold and hide the verdict."""
        m = self.measured
        if m is None:
            return None
        if isinstance(m, int):
            return f"{m:,}{self.unit}"
        digits = 2
        while digits < 4 and m != self.threshold and round(m, digits) == self.threshold:
            digits += 1
        return f"{m:,.{digits}f}{self.unit}"

    def line(self) -> str:
        got = self.got or "not measured"
        want = self.want
        detail = f"  ({self.detail})" if self.detail else ""
        return f"{self.status:<4}  {self.name}: {got} (target {want}){detail}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "—" if x is None else format(x, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def find_cell(
    results: dict[str, Any],
    client: str,
    latency: float,
    page_size: int,
    concurrency: int,
    *,
    total_size: bool = True,
) -> dict[str, Any] | None:
    """A scan cell; the cells of a client with a fixed concurrency (the SDK, which
    is sequential, and aiobatch without options) match any concurrency.
    ``total_size=False``: the cell measured against a server that omits it."""
    for c in results.get("scan", {}).get("cells", ()):
        if (
            c["client"] == client
            and c["latency_ms"] == latency
            and c["page_size"] == page_size
            and (c["concurrency"] == concurrency or client in FIXED)
            and c.get("total_size", True) == total_size
        ):
            return dict(c)
    return None


def _rate(
    results: dict[str, Any],
    client: str,
    lat: float,
    page: int,
    conc: int,
    *,
    total_size: bool = True,
) -> float | None:
    c = find_cell(results, client, lat, page, conc, total_size=total_size)
    return None if c is None else c["items_per_s"]


def _path_targets(results: dict[str, Any]) -> Iterable[Target]:
    """Issue 26: a scan without a total, and item by item, against the headline scan."""
    if "scan" not in results:
        return
    for lat, page, conc in NO_TOTAL_CELLS:
        mine = _rate(results, "aiobatch", lat, page, conc, total_size=False)
        told = _rate(results, "aiobatch", lat, page, conc)
        yield Target(
            f"no total_size, {lat:g} ms, page {page}, c={conc}: aiobatch vs the same scan with it",
            _ratio(mine, told),
            NO_TOTAL_VS_TOTAL,
            ">=",
            "×",
            f"{_fmt(mine)} vs {_fmt(told)} items/s",
        )
    for lat, page, conc in ITER_CELLS:
        mine, pages = (_rate(results, n, lat, page, conc) for n in ("aiobatch-iter", "aiobatch"))
        yield Target(
            f"item by item, {lat:g} ms, page {page}, c={conc}: iter() vs iter_pages()",
            _ratio(mine, pages),
            ITER_VS_PAGES,
            ">=",
            "×",
            f"{_fmt(mine)} vs {_fmt(pages)} items/s (with total_size)",
        )


def _cpu_per_m(
    results: dict[str, Any], client: str, lat: float, page: int, conc: int
) -> float | None:
    """Client CPU seconds (user + sys, least of the cell's runs) per million items."""
    c = find_cell(results, client, lat, page, conc)
    return None if c is None else c.get("client_cpu_s_per_m_items")


def best_sdk(results: dict[str, Any], lat: float, page: int) -> tuple[str | None, float | None]:
    """The faster of the SDK's two transports (the stricter baseline)."""
    rates = [(n, _rate(results, n, lat, page, 1)) for n in SDKS]
    known = [(n, r) for n, r in rates if r is not None]
    return max(known, key=lambda nr: nr[1]) if known else (None, None)


def _decode_targets(results: dict[str, Any]) -> Iterable[Target]:
    for row in results.get("decode", {}).get("results", ()):
        cands, n = row["candidates"], row["items"]
        mine = cands.get("aiobatch", {}).get("items_per_s")
        sdk = cands.get("sdk", {}).get("items_per_s")
        raw = cands.get("msgspec", {}).get("items_per_s")
        yield Target(
            f"decode {n:,} items: aiobatch vs the SDK's path", _ratio(mine, sdk), 50, ">=", "×"
        )
        yield Target(
            f"decode {n:,} items: aiobatch vs raw msgspec to built-ins",
            _ratio(mine, raw),
            0.9,
            ">=",
            "×",
        )


def _scan_targets(results: dict[str, Any]) -> Iterable[Target]:
    if "scan" not in results:
        return
    for lat, vs_sdk in ((50.0, 18.0), (0.0, 20.0)):
        mine = _rate(results, "aiobatch", lat, 100, 16)
        name, sdk = best_sdk(results, lat, 100)
        detail = ", ".join(f"{n} {_rate(results, n, lat, 100, 1) or 0:,.0f} items/s" for n in SDKS)
        floor = _ratio(_rate(results, "bare", lat, 100, 16), sdk)
        yield Target(
            f"scan {lat:g} ms, page 100, c=16: aiobatch vs the SDK (faster transport: {name})",
            _ratio(mine, sdk),
            vs_sdk,
            ">=",
            "×",
            f"aiobatch {mine or 0:,.0f} items/s; {detail}; the bare floor at c=16 reaches "
            f"{_fmt(floor, '.1f')}× the SDK",
        )
    for lat, page, conc in VS_BARE_CELLS:
        mine, bare = (
            _rate(results, "aiobatch", lat, page, conc),
            _rate(results, "bare", lat, page, conc),
        )
        ratio = _ratio(mine, bare)
        ids = "both exactly the expected ids" if ratio else "not run, or wrong ids"
        yield Target(
            f"scan {lat:g} ms, page {page}, c={conc}: aiobatch vs the bare aiohttp+msgspec loop",
            ratio,
            VS_BARE,
            ">=",
            "×",
            f"aiobatch {_fmt(mine)} vs bare {_fmt(bare)} items/s, {ids}",
        )
    for page in (100, 1000):
        mine, bare = (
            _cpu_per_m(results, "aiobatch", 0.0, page, 16),
            _cpu_per_m(results, "bare", 0.0, page, 16),
        )
        yield Target(
            f"client CPU per 1M items, 0 ms, page {page}, c=16: aiobatch / the bare loop",
            _ratio(mine, bare),
            CPU_VS_BARE[page],
            "<=",
            "×",
            f"user + sys CPU s per 1M items, least of the runs: aiobatch {_fmt(mine, '.2f')}, "
            f"bare {_fmt(bare, '.2f')} (simulator in its own process)",
        )
    mine = _rate(results, DEFAULTS_CLIENT, 50.0, 100, 0)
    name, sdk = best_sdk(results, 50.0, 100)
    yield Target(
        f"defaults, 50 ms: aiobatch with no scan options vs the SDK at page 100 ({name})",
        _ratio(mine, sdk),
        DEFAULTS_VS_SDK,
        ">=",
        "×",
        f"aiobatch {_defaults_shown(results)} {_fmt(mine)} items/s vs the SDK {_fmt(sdk)} items/s",
    )


def _defaults_shown(results: dict[str, Any]) -> str:
    d = results.get("scan", {}).get("defaults")
    return "(defaults)" if not d else f"(page {d['page_size']}, c={d['concurrency']})"


def request_budget(pages: int, *, total_size: bool = True) -> int:
    """Requests a scan of ``pages`` pages may send: one page is one request plus the
    end probe; more pages may cost one more (a probe sent before the end was seen).
    Without a total, the job's counts are read once instead (issue 26)."""
    if not total_size:
        return pages + 2
    return 2 if pages <= 1 else pages + 2


def _request_targets(results: dict[str, Any]) -> Iterable[Target]:
    for row in results.get("requests", {}).get("rows", ()):
        pages, told = row["pages"], row.get("total_size", True)
        yield Target(
            f"requests, {row['items']:,} items = {pages:,} page{'s' if pages > 1 else ''} of "
            f"{row['page_size']} ({row['options']}): "
            "requests per scan",
            row["requests"],
            request_budget(pages, total_size=told),
            "<=",
            "",
            f"server saw {row['requests']}, client counted {row['client_requests']}; "
            f"ids {'exact' if row['ok'] else 'WRONG'}",
        )


def slow_bound_mib(slow: dict[str, Any]) -> float:
    """Read-ahead bound: ``2c + 3`` decoded pages (requested but not handed out, 2
    waiting in the stream, 1 with the consumer) plus the slack."""
    pages = 2 * slow["concurrency"] + 3
    return float(pages * slow["decoded_page_bytes"]) / 1024 / 1024 + SLOW_SLACK_MIB


def _slow_targets(slow: dict[str, Any]) -> Iterable[Target]:
    runs = slow["runs"]
    bound = slow_bound_mib(slow)
    head = (
        f"memory, slow consumer ({slow['sleep_per_page_s'] * 1e3:g} ms per page), page "
        f"{slow['page_size']}, c={slow['concurrency']}"
    )
    for r in runs:
        yield Target(
            f"{head}, {r['total']:,} items: peak RSS above baseline",
            r["above_baseline_mib"],
            round(bound, 1),
            "<=",
            " MiB",
            f"(2c+3) × {slow['decoded_page_bytes'] / 1e6:.2f} MB decoded page + "
            f"{SLOW_SLACK_MIB:g} MiB slack",
        )
    if len(runs) >= 2:
        small, large = runs[0], runs[-1]
        yield Target(
            f"{head}: growth of the peak from {small['total']:,} to {large['total']:,} items",
            large["above_baseline_mib"] - small["above_baseline_mib"],
            SLOW_GROWTH_MIB,
            "<=",
            " MiB",
            f"{small['above_baseline_mib']:.1f} → {large['above_baseline_mib']:.1f} MiB "
            "above baseline",
        )


def _memory_targets(results: dict[str, Any]) -> Iterable[Target]:
    mem = results.get("memory")
    if not mem:
        return
    for r in mem["runs"]:
        yield Target(
            f"memory, {mem['items']:,} items, page {mem['page_size']}, c={r['concurrency']}: "
            "peak RSS above baseline",
            r["above_baseline_mib"],
            64,
            "<",
            " MiB",
            f"peak {r['peak_mib']:.1f} MiB, baseline {r['baseline_mib']:.1f} MiB",
        )
    if mem.get("slow"):
        yield from _slow_targets(mem["slow"])


def correctness(results: dict[str, Any]) -> list[str]:
    """Every measurement whose output was wrong (empty: all correct)."""
    bad = [
        f"scan {c['client']} {c['latency_ms']:g} ms page {c['page_size']} c={c['concurrency']}"
        + ("" if c.get("total_size", True) else " (no total_size)")
        for c in results.get("scan", {}).get("cells", ())
        if not c["correct"]
    ]
    for row in results.get("decode", {}).get("results", ()):
        bad += [
            f"decode {row['items']} {k}" for k, v in row["candidates"].items() if not v["correct"]
        ]
    mem = results.get("memory", {})
    bad += [f"memory c={r['concurrency']}" for r in mem.get("runs", ()) if not r["ok"]]
    bad += [
        f"memory slow consumer {r['total']} items"
        for r in (mem.get("slow") or {}).get("runs", ())
        if not r["ok"]
    ]
    bad += [
        f"requests {r['items']} items ({r['options']})"
        for r in results.get("requests", {}).get("rows", ())
        if not r["ok"]
    ]
    bad += [
        f"first wave page {c['page_size']} c={c['concurrency']}"
        for c in results.get("first_wave", {}).get("cells", ())
        if not c["correct"]
    ]
    return bad


def _first_wave_targets(results: dict[str, Any]) -> Iterable[Target]:
    fw = results.get("first_wave")
    for name, measured, correct in first_wave_verdicts(fw) if fw else ():
        yield Target(name, measured if correct else None, 0.95, ">=", "×")


def targets(results: dict[str, Any]) -> list[Target]:
    return [
        *_decode_targets(results),
        *_scan_targets(results),
        *_path_targets(results),
        *_first_wave_targets(results),
        *_request_targets(results),
        *_memory_targets(results),
    ]

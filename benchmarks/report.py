"""Targets (PASS / MISS), the printed tables and the markdown summary.

Every target is a ratio between two candidates measured side by side in the
same run (best of N each), except memory, which is a difference between two
readings of the same process, and request counts, which are counted by the
server.  Targets are reported, never asserted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .cpu_profile import cpu_markdown, cpu_text
from .first_wave import first_wave_markdown, first_wave_text, first_wave_verdicts

__all__ = ["Target", "render", "summary_markdown", "targets"]

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
#: Client CPU per item, aiobatch / bare, at 0 ms latency, c=16: at most this.
CPU_VS_BARE = 1.2
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


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def find_cell(
    results: dict[str, Any], client: str, latency: float, page_size: int, concurrency: int
) -> dict[str, Any] | None:
    """A scan cell; the cells of a client with a fixed concurrency (the SDK, which
    is sequential, and aiobatch without options) match any concurrency."""
    for c in results.get("scan", {}).get("cells", ()):
        if (
            c["client"] == client
            and c["latency_ms"] == latency
            and c["page_size"] == page_size
            and (c["concurrency"] == concurrency or client in FIXED)
        ):
            return dict(c)
    return None


def _rate(results: dict[str, Any], client: str, lat: float, page: int, conc: int) -> float | None:
    c = find_cell(results, client, lat, page, conc)
    return None if c is None else c["items_per_s"]


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
            CPU_VS_BARE,
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


def request_budget(pages: int) -> int:
    """Requests a scan of ``pages`` pages may send: one page is one request plus the
    end probe; more pages may cost one more (a probe sent before the end was seen)."""
    return 2 if pages <= 1 else pages + 2


def _request_targets(results: dict[str, Any]) -> Iterable[Target]:
    for row in results.get("requests", {}).get("rows", ()):
        pages = row["pages"]
        yield Target(
            f"requests, {row['items']:,} items = {pages:,} page{'s' if pages > 1 else ''} of "
            f"{row['page_size']} ({row['options']}): requests per scan",
            row["requests"],
            request_budget(pages),
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
        *_first_wave_targets(results),
        *_request_targets(results),
        *_memory_targets(results),
    ]


# --- text ---------------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "—" if x is None else format(x, spec)


def _decode_text(results: dict[str, Any]) -> list[str]:
    out = ["", "DECODING one page (best of N; ratio = aiobatch throughput / candidate's)"]
    out.append(f"{'items':>8}  {'candidate':<34}{'items/s':>12}{'MB/s':>9}{'aiobatch ×':>12}")
    for row in results["decode"]["results"]:
        mine = row["candidates"]["aiobatch"]["items_per_s"]
        for i, (_, c) in enumerate(row["candidates"].items()):
            size = f"{row['items']:,}" if i == 0 else ""
            ratio = mine / c["items_per_s"]
            flag = "" if c["correct"] else "  WRONG OUTPUT"
            out.append(
                f"{size:>8}  {c['label']:<34}{c['items_per_s']:>12,.0f}{c['mb_per_s']:>9.1f}"
                f"{ratio:>11.2f}×{flag}"
            )
    return out


def _scan_text(results: dict[str, Any]) -> list[str]:
    scan = results["scan"]
    out = [
        "",
        f"END-TO-END SCAN of a {scan['items']:,}-item job, items/s (best of N); the SDK is "
        "sequential (same value on every row); srv = simulator CPU share in the aiobatch run;",
        "cpu/1M = client process CPU s (user + sys, least of the runs) per 1M items: "
        "aiobatch, bare, and their ratio",
        f"{'latency':>7} {'page':>5} {'c':>3}"
        + "".join(f"{n:>13}" for n in SCAN_COLUMNS)
        + f"{'×SDK':>8}{'×bare':>7}{'srv':>6}{'cpu/1M':>8}{'bare':>6}{'×cpu':>7}",
    ]
    for lat in scan["latencies_ms"]:
        for page in scan["page_sizes"]:
            for conc in scan["concurrencies"]:
                rates = [_rate(results, n, lat, page, conc) for n in SCAN_COLUMNS]
                _, sdk = best_sdk(results, lat, page)
                mine = find_cell(results, "aiobatch", lat, page, conc)
                srv = None if mine is None else mine.get("server_cpu_share")
                cpu = [_cpu_per_m(results, n, lat, page, conc) for n in ("aiobatch", "bare")]
                out.append(
                    f"{lat:>5g}ms {page:>5} {conc:>3}"
                    + "".join(f"{_fmt(r):>13}" for r in rates)
                    + f"{_fmt(_ratio(rates[0], sdk), '.1f'):>7}×"
                    + f"{_fmt(_ratio(rates[0], rates[1]), '.2f'):>6}×"
                    + f"{_fmt(None if srv is None else 100 * srv, '.0f'):>5}%"
                    + f"{_fmt(cpu[0], '.2f'):>8}{_fmt(cpu[1], '.2f'):>6}"
                    + f"{_fmt(_ratio(*cpu), '.2f'):>6}×"
                )
    return out + _defaults_text(results)


def _defaults_rows(results: dict[str, Any]) -> list[tuple[float, int, float | None, float | None]]:
    """(latency, page, aiobatch without options, the faster SDK) for each latency,
    from the page-100 group (the official CLI's default page size) if measured."""
    scan = results["scan"]
    page = 100 if 100 in scan["page_sizes"] else scan["page_sizes"][0]
    return [
        (lat, page, _rate(results, DEFAULTS_CLIENT, lat, page, 0), best_sdk(results, lat, page)[1])
        for lat in scan["latencies_ms"]
    ]


def _defaults_text(results: dict[str, Any]) -> list[str]:
    rows = _defaults_rows(results)
    if all(mine is None for _, _, mine, _ in rows):
        return []
    out = ["", f"NO OPTIONS: aiobatch iter_pages(job_id) {_defaults_shown(results)} vs the SDK"]
    for lat, page, mine, sdk in rows:
        out.append(
            f"{lat:>5g}ms  {_fmt(mine):>10} items/s; SDK at page {page} {_fmt(sdk):>8} items/s: "
            f"{_fmt(_ratio(mine, sdk), '.1f')}×"
        )
    return out


def _requests_text(results: dict[str, Any]) -> list[str]:
    out = [
        "",
        "REQUESTS PER SCAN, counted by the simulator (minimum possible: pages + 1 end probe)",
    ]
    out.append(
        f"{'options':<28}{'items':>9}{'pages':>7}{'requests':>10}{'minimum':>9}{'client':>8}  ids"
    )
    for r in results["requests"]["rows"]:
        out.append(
            f"{r['options']:<28}{r['items']:>9,}{r['pages']:>7,}{r['requests']:>10,}"
            f"{r['pages'] + 1:>9,}{r['client_requests']:>8,}  {'ok' if r['ok'] else r['problems']}"
        )
    return out


def _memory_text(results: dict[str, Any]) -> list[str]:
    mem = results["memory"]
    out = [
        "",
        f"MEMORY streaming {mem['items']:,} items (page {mem['page_size']}), fresh process each",
    ]
    for r in mem["runs"]:
        out.append(
            f"  c={r['concurrency']:<3} peak {r['peak_mib']:6.1f} MiB = baseline "
            f"{r['baseline_mib']:.1f} + {r['above_baseline_mib']:.1f} MiB; "
            f"{r['items_per_s'] or 0:,.0f} items/s; ids {'ok' if r['ok'] else r['problems']}"
        )
    slow = mem.get("slow")
    if slow:
        out.append(
            f"  slow consumer (sleeps {slow['sleep_per_page_s'] * 1e3:g} ms per page), page "
            f"{slow['page_size']}, c={slow['concurrency']}: one page is "
            f"{slow['page_body_bytes'] / 1e6:.2f} MB of JSON, "
            f"{slow['decoded_page_bytes'] / 1e6:.2f} MB decoded; bound (2c+3) pages + "
            f"{SLOW_SLACK_MIB:g} MiB = "
            f"{slow_bound_mib(slow):.1f} MiB"
        )
        for r in slow["runs"]:
            out.append(
                f"    {r['total']:>9,} items: peak {r['peak_mib']:6.1f} MiB = baseline "
                f"{r['baseline_mib']:.1f} + {r['above_baseline_mib']:.1f} MiB; "
                f"{r['items_per_s'] or 0:,.0f} items/s; ids {'ok' if r['ok'] else r['problems']}"
            )
    return out


def render(results: dict[str, Any]) -> str:
    env = results["env"]
    pk = env["packages"]
    lines = [
        f"aiobatch benchmarks ({results['mode']}): Python {env['python']}, "
        f"{env['cpu_usable']} CPUs, git {str(env['git_sha'])[:10]}"
        f"{' (dirty)' if env['git_dirty'] else ''}, llama-cloud {pk.get('llama-cloud')}, "
        f"msgspec {pk.get('msgspec')}, aiohttp {pk.get('aiohttp')}",
    ]
    if "decode" in results:
        lines += _decode_text(results)
    if "scan" in results:
        lines += _scan_text(results)
    if "cpu" in results:
        lines += cpu_text(results["cpu"])
    if "first_wave" in results:
        lines += first_wave_text(results["first_wave"])
    if "requests" in results:
        lines += _requests_text(results)
    if "memory" in results:
        lines += _memory_text(results)
    lines += ["", "TARGETS"] + [Target(**_plain(t)).line() for t in results["targets"]]
    if results.get("source_changed_during_run"):
        lines.append(
            "WARNING: aiobatch's sources changed on disk during this run; "
            "parts of it may have measured different code: run it again"
        )
    bad = correctness(results)
    lines.append(
        "PASS  correctness: every client returned exactly the expected items"
        if not bad
        else f"FAIL  correctness: wrong output from {', '.join(bad)}"
    )
    return "\n".join(lines)


def _plain(t: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in t.items() if k != "status"}


# --- markdown -------------------------------------------------------------------------


def summary_markdown(results: dict[str, Any]) -> str:
    env = results["env"]
    pk = env["packages"]
    dirty = " + uncommitted changes" if env.get("aiobatch_dirty", env["git_dirty"]) else ""
    md = [
        "## Benchmarks",
        "",
        f"`make bench` on {env['cpu_usable']} shared CPUs, Python {env['python']}, "
        f"aiobatch @ `{str(env['git_sha'])[:10]}`{dirty}, llama-cloud {pk.get('llama-cloud')} "
        f"(httpx {pk.get('httpx')}, httpx-aiohttp {pk.get('httpx-aiohttp')}), "
        f"{env['time']}. Every ratio compares candidates run side by side, interleaved, in "
        "the same run (best of N); the simulator runs in its own process.",
        "",
    ]
    if "decode" in results:
        md += [
            "**Decoding one page** (items/s; realistic items, all statuses, non-ASCII errors)",
            "",
            "| items | aiobatch | raw msgspec | orjson | pydantic v2 | official SDK | vs SDK |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["decode"]["results"]:
            c = row["candidates"]
            r = {
                k: c[k]["items_per_s"] if k in c else None
                for k in ("aiobatch", "msgspec", "orjson", "pydantic", "sdk")
            }
            md.append(
                f"| {row['items']:,} | "
                + " | ".join(_fmt(v) for v in r.values())
                + f" | **{_fmt(_ratio(r['aiobatch'], r['sdk']), '.0f')}×** |"
            )
        md.append("")
    if "scan" in results:
        scan = results["scan"]
        conc = 16 if 16 in scan["concurrencies"] else max(scan["concurrencies"])
        top = max(scan["concurrencies"])
        md += [
            f"**Reading a whole {scan['items']:,}-item job** (items/s) vs server latency",
            "",
            f"| latency | page | SDK (httpx) | SDK (aiohttp) | aiobatch c={conc} | "
            f"aiobatch c={top} | bare loop c={conc} | aiobatch c={conc} vs SDK | "
            f"vs bare c={conc} | vs bare c={top} |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for lat in scan["latencies_ms"]:
            for page in scan["page_sizes"]:
                vals = [
                    _rate(results, "sdk-httpx", lat, page, 1),
                    _rate(results, "sdk-aiohttp", lat, page, 1),
                    _rate(results, "aiobatch", lat, page, conc),
                    _rate(results, "aiobatch", lat, page, top),
                    _rate(results, "bare", lat, page, conc),
                ]
                bare_top = _rate(results, "bare", lat, page, top)
                md.append(
                    f"| {lat:g} ms | {page} | "
                    + " | ".join(_fmt(v) for v in vals)
                    + f" | **{_fmt(_ratio(vals[2], best_sdk(results, lat, page)[1]), '.1f')}×**"
                    + f" | {_fmt(_ratio(vals[2], vals[4]), '.2f')}×"
                    + f" | {_fmt(_ratio(vals[3], bare_top), '.2f')}× |"
                )
        md += ["", "(vs SDK: against the faster of its two transports.)", ""]
        md += _cpu_markdown(results, conc) + _defaults_markdown(results)
    if "cpu" in results:
        md += cpu_markdown(results["cpu"])
    if "first_wave" in results:
        md += first_wave_markdown(results["first_wave"])
    if "requests" in results:
        md += _requests_markdown(results)
    if "memory" in results:
        mem = results["memory"]
        md += [
            f"**Memory** streaming {mem['items']:,} items (page {mem['page_size']}): peak RSS "
            "above the interpreter's baseline after imports, fresh process each: "
            + ", ".join(
                f"c={r['concurrency']}: {r['above_baseline_mib']:.1f} MiB" for r in mem["runs"]
            )
            + ".",
            "",
        ]
        if mem.get("slow"):
            md += _slow_markdown(mem["slow"])
    md += ["| target | measured | |", "|---|---:|:---:|"]
    for t in results["targets"]:
        tt = Target(**_plain(t))
        got = tt.got or "—"
        md.append(f"| {tt.name} ({tt.want}) | {got} | {tt.status} |")
    return "\n".join(md) + "\n"


def _cpu_markdown(results: dict[str, Any], conc: int) -> list[str]:
    scan = results["scan"]
    md = [
        f"**Client CPU** (seconds of user + sys CPU of the client process per million items, "
        f"least of the runs, c={conc}; the simulator runs in its own process)",
        "",
        "| latency | page | aiobatch CPU/1M | bare CPU/1M | aiobatch / bare |",
        "|---:|---:|---:|---:|---:|",
    ]
    for lat in scan["latencies_ms"]:
        for page in scan["page_sizes"]:
            mine, bare = (_cpu_per_m(results, n, lat, page, conc) for n in ("aiobatch", "bare"))
            md.append(
                f"| {lat:g} ms | {page} | {_fmt(mine, '.2f')} s | {_fmt(bare, '.2f')} s | "
                f"{_fmt(_ratio(mine, bare), '.2f')}× |"
            )
    return [*md, ""]


def _defaults_markdown(results: dict[str, Any]) -> list[str]:
    rows = _defaults_rows(results)
    if all(mine is None for _, _, mine, _ in rows):
        return []
    md = [
        f"**No options at all**: `iter_pages(job_id)` {_defaults_shown(results)} vs the SDK "
        "at the official CLI's default page size",
        "",
        "| latency | aiobatch, no options | SDK page (faster transport) | vs SDK |",
        "|---:|---:|---:|---:|",
    ]
    for lat, page, mine, sdk in rows:
        md.append(
            f"| {lat:g} ms | {_fmt(mine)} | {_fmt(sdk)} (page {page}) | "
            f"**{_fmt(_ratio(mine, sdk), '.1f')}×** |"
        )
    return [*md, ""]


def _requests_markdown(results: dict[str, Any]) -> list[str]:
    md = [
        "**Requests per scan** (counted by the simulator; the minimum possible is one per "
        "page plus the end probe)",
        "",
        "| options | items | pages | requests | minimum | ids |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for r in results["requests"]["rows"]:
        md.append(
            f"| {r['options']} | {r['items']:,} | {r['pages']:,} | {r['requests']:,} | "
            f"{r['pages'] + 1:,} | {'exact' if r['ok'] else 'WRONG'} |"
        )
    return [*md, ""]


def _slow_markdown(slow: dict[str, Any]) -> list[str]:
    return [
        f"**Memory, slow consumer** (sleeps {slow['sleep_per_page_s'] * 1e3:g} ms per page; "
        f"page {slow['page_size']}, c={slow['concurrency']}; one decoded page "
        f"≈ {slow['decoded_page_bytes'] / 1e6:.2f} MB, bound (2c+3) pages + "
        f"{SLOW_SLACK_MIB:g} MiB = {slow_bound_mib(slow):.1f} MiB): peak RSS above baseline "
        + ", ".join(
            f"{r['total']:,} items: {r['above_baseline_mib']:.1f} MiB" for r in slow["runs"]
        )
        + ".",
        "",
    ]

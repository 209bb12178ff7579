"""Targets (PASS / MISS), the printed tables and the markdown summary.

Every target is a ratio between two candidates measured side by side in the
same run (best of N each), except memory, which is a difference between two
readings of the same process.  Targets are reported, never asserted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Target", "render", "summary_markdown", "targets"]

SDKS = ("sdk-httpx", "sdk-aiohttp")
SCAN_COLUMNS = ("aiobatch", "bare", "sdk-httpx", "sdk-aiohttp")


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    measured: float | None
    threshold: float
    op: Literal[">=", "<"]
    unit: str
    detail: str = ""

    @property
    def status(self) -> str:
        if self.measured is None:
            return "N/A"
        ok = self.measured >= self.threshold if self.op == ">=" else self.measured < self.threshold
        return "PASS" if ok else "MISS"

    def line(self) -> str:
        got = "not measured" if self.measured is None else f"{self.measured:,.2f}{self.unit}"
        want = f"{'≥' if self.op == '>=' else '<'} {self.threshold:g}{self.unit}"
        detail = f"  ({self.detail})" if self.detail else ""
        return f"{self.status:<4}  {self.name}: {got} (target {want}){detail}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def find_cell(
    results: dict[str, Any], client: str, latency: float, page_size: int, concurrency: int
) -> dict[str, Any] | None:
    """A scan cell; the SDK's (sequential) cells match any concurrency."""
    for c in results.get("scan", {}).get("cells", ()):
        if (
            c["client"] == client
            and c["latency_ms"] == latency
            and c["page_size"] == page_size
            and (c["concurrency"] == concurrency or client in SDKS)
        ):
            return dict(c)
    return None


def _rate(results: dict[str, Any], client: str, lat: float, page: int, conc: int) -> float | None:
    c = find_cell(results, client, lat, page, conc)
    return None if c is None else c["items_per_s"]


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
        if lat == 50.0:
            bare = _rate(results, "bare", lat, 100, 16)
            yield Target(
                "scan 50 ms, page 100, c=16: aiobatch vs the bare aiohttp+msgspec loop",
                _ratio(mine, bare),
                0.9,
                ">=",
                "×",
                f"aiobatch {mine or 0:,.0f} vs bare {bare or 0:,.0f} items/s",
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
    bad += [
        f"memory c={r['concurrency']}"
        for r in results.get("memory", {}).get("runs", ())
        if not r["ok"]
    ]
    return bad


def targets(results: dict[str, Any]) -> list[Target]:
    return [*_decode_targets(results), *_scan_targets(results), *_memory_targets(results)]


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
        "sequential (same value on every row); srv = simulator CPU share in the aiobatch run",
        f"{'latency':>7} {'page':>5} {'c':>3}"
        + "".join(f"{n:>13}" for n in SCAN_COLUMNS)
        + f"{'×SDK':>8}{'×bare':>7}{'srv':>6}",
    ]
    for lat in scan["latencies_ms"]:
        for page in scan["page_sizes"]:
            for conc in scan["concurrencies"]:
                rates = [_rate(results, n, lat, page, conc) for n in SCAN_COLUMNS]
                _, sdk = best_sdk(results, lat, page)
                mine = find_cell(results, "aiobatch", lat, page, conc)
                srv = None if mine is None else mine.get("server_cpu_share")
                out.append(
                    f"{lat:>5g}ms {page:>5} {conc:>3}"
                    + "".join(f"{_fmt(r):>13}" for r in rates)
                    + f"{_fmt(_ratio(rates[0], sdk), '.1f'):>7}×"
                    + f"{_fmt(_ratio(rates[0], rates[1]), '.2f'):>6}×"
                    + f"{_fmt(None if srv is None else 100 * srv, '.0f'):>5}%"
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
            f"aiobatch c={top} | bare loop c={conc} | aiobatch c={conc} vs SDK |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
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
                md.append(
                    f"| {lat:g} ms | {page} | "
                    + " | ".join(_fmt(v) for v in vals)
                    + f" | **{_fmt(_ratio(vals[2], best_sdk(results, lat, page)[1]), '.1f')}×** |"
                )
        md += ["", "(vs SDK: against the faster of its two transports.)", ""]
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
    md += ["| target | measured | |", "|---|---:|:---:|"]
    for t in results["targets"]:
        tt = Target(**_plain(t))
        got = "—" if tt.measured is None else f"{tt.measured:,.2f}{tt.unit}"
        want = f"{'≥' if tt.op == '>=' else '<'} {tt.threshold:g}{tt.unit}"
        md.append(f"| {tt.name} ({want}) | {got} | {tt.status} |")
    return "\n".join(md) + "\n"

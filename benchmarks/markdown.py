"""The markdown summary of a benchmark run (``benchmarks/results/summary.md``)."""

from __future__ import annotations

from typing import Any

from .cpu_profile import cpu_markdown
from .first_wave import first_wave_markdown
from .report import _defaults_rows, _plain
from .targets import (
    SLOW_SLACK_MIB,
    Target,
    _cpu_per_m,
    _defaults_shown,
    _fmt,
    _rate,
    _ratio,
    best_sdk,
    slow_bound_mib,
)

__all__ = ["summary_markdown"]


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

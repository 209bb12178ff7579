"""The printed report of a benchmark run: tables, then PASS / MISS per target."""

from __future__ import annotations

from typing import Any

from .cpu_profile import cpu_text
from .first_wave import first_wave_text
from .targets import (
    DEFAULTS_CLIENT,
    SCAN_COLUMNS,
    SLOW_SLACK_MIB,
    Target,
    _cpu_per_m,
    _defaults_shown,
    _fmt,
    _rate,
    _ratio,
    best_sdk,
    correctness,
    find_cell,
    slow_bound_mib,
)

__all__ = ["render"]


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
    return out + _defaults_text(results) + _no_total_text(results)


def _no_total_text(results: dict[str, Any]) -> list[str]:
    """Each client that ran against a server omitting ``total_size``, beside its
    rate with it (whether the API sends it is not published)."""
    scan = results["scan"]
    names = scan.get("no_total_clients") or []
    if not any(c.get("total_size", True) is False for c in scan["cells"]):
        return []
    out = [
        "",
        "WITHOUT total_size (the server leaves it out), items/s: with it / without it",
        f"{'latency':>7} {'page':>5} {'c':>3}" + "".join(f"{n:>24}" for n in names),
    ]
    for lat in scan["latencies_ms"]:
        for page in scan["page_sizes"]:
            for conc in scan["concurrencies"]:
                pairs = [
                    (
                        _rate(results, n, lat, page, conc),
                        _rate_without_total(results, n, lat, page, conc),
                    )
                    for n in names
                ]
                out.append(
                    f"{lat:>5g}ms {page:>5} {conc:>3}"
                    + "".join(f"{_fmt(a):>11} / {_fmt(b):>10}" for a, b in pairs)
                )
    return out


def _rate_without_total(
    results: dict[str, Any], client: str, lat: float, page: int, conc: int
) -> float | None:
    c = find_cell(results, client, lat, page, conc, total_size=False)
    return None if c is None else c["items_per_s"]


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

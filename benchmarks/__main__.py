"""``python -m benchmarks [--quick] [--only decode,scan,cpu,first_wave,requests,memory,results]``.

Prints the tables and PASS/MISS per target, and writes under
``benchmarks/results/``: ``latest.json`` (``quick.json`` with ``--quick``),
``scan.png`` and ``summary.md`` (``scan-quick.png`` / ``summary-quick.md``).
Exit status 1 only if a client returned wrong items; a missed target is
reported, not fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._env import ROOT, environment, source_fingerprint
from .cpu_profile import CpuPlan, run_cpu_profile
from .decode import run_decode
from .first_wave import FirstWavePlan, run_first_wave
from .markdown import summary_markdown
from .memory import SlowConsumerPlan, run_memory, run_slow_memory
from .report import render
from .request_counts import RequestPlan, run_requests
from .results_download import ResultsPlan, run_results
from .scan import ScanPlan, ServerFactory, run_scans, subprocess_server
from .targets import correctness, targets

__all__ = ["FULL", "QUICK", "Config", "main", "results_markdown", "run", "write"]

RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("decode", "scan", "cpu", "first_wave", "requests", "memory")
#: Every part, as ``make bench`` runs them (``run()`` defaults to ``PARTS``).
ALL_PARTS = (*PARTS, "results")


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    decode_sizes: tuple[int, ...]
    decode_rounds: int
    decode_budget_s: float
    scan: ScanPlan
    memory_items: int
    memory_concurrencies: tuple[int, ...] = (4, 32)
    memory_page_size: int = 1000
    #: A consumer that sleeps per page (part of ``memory``); None: not run.
    memory_slow: SlowConsumerPlan | None = field(default_factory=SlowConsumerPlan)
    requests: RequestPlan = field(default_factory=RequestPlan)
    first_wave: FirstWavePlan = field(default_factory=FirstWavePlan)
    cpu: CpuPlan = field(default_factory=CpuPlan)
    outputs: dict[str, str] = field(default_factory=dict)
    results: ResultsPlan = field(default_factory=ResultsPlan)


FULL = Config(
    name="full",
    decode_sizes=(1_000, 10_000, 100_000),
    decode_rounds=7,
    decode_budget_s=8.0,
    scan=ScanPlan(),
    memory_items=1_000_000,
    outputs={"json": "latest.json", "chart": "scan.png", "summary": "summary.md"},
)

QUICK = Config(
    name="quick",
    decode_sizes=(1_000, 10_000),
    decode_rounds=3,
    decode_budget_s=1.0,
    scan=ScanPlan(
        items=10_000,
        latencies_ms=(0.0, 50.0),
        page_sizes=(100, 1000),
        concurrencies=(16, 32),
        rounds=2,
        budget_s=1.0,
    ),
    memory_items=200_000,
    memory_slow=SlowConsumerPlan(items=(50_000, 200_000)),
    requests=RequestPlan(items=(37, 100, 1_000, 10_000), default_items=(500, 5_000)),
    first_wave=FirstWavePlan(items=20_000, page_sizes=(1000,), concurrencies=(16,), rounds=1),
    cpu=CpuPlan(items=20_000, rounds=2),
    outputs={"json": "quick.json", "chart": "scan-quick.png", "summary": "summary-quick.md"},
    results=ResultsPlan(items=600, official_items=40, rounds=1, big_items=24),
)


def _log(msg: str) -> None:
    print(msg, flush=True)


async def run(
    cfg: Config,
    parts: Sequence[str] = PARTS,
    *,
    server: ServerFactory = subprocess_server,
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    """Run ``parts`` of the suite; JSON-ready results with targets and verdicts."""
    started = time.perf_counter()
    results: dict[str, Any] = {"suite": "aiobatch", "mode": cfg.name, "env": environment()}
    if "decode" in parts:  # CPU only: blocking the (otherwise idle) loop is fine
        results["decode"] = run_decode(
            cfg.decode_sizes, rounds=cfg.decode_rounds, budget_s=cfg.decode_budget_s, log=log
        )
    if "scan" in parts:
        results["scan"] = await run_scans(cfg.scan, server=server, log=log)
    if "cpu" in parts:
        results["cpu"] = await run_cpu_profile(cfg.cpu, server=server, log=log)
    if "first_wave" in parts:
        results["first_wave"] = await run_first_wave(cfg.first_wave, server=server, log=log)
    if "requests" in parts:  # in-process simulator: only the counts matter
        results["requests"] = await run_requests(cfg.requests, log=log)
    if "memory" in parts:
        async with server(cfg.memory_items, 0.0) as ep:
            results["memory"] = await run_memory(
                ep, cfg.memory_concurrencies, page_size=cfg.memory_page_size, log=log
            )
        if cfg.memory_slow is not None:
            results["memory"]["slow"] = await run_slow_memory(cfg.memory_slow, server, log=log)
    if "results" in parts:
        results["results"] = await run_results(cfg.results, log=log)
    source = source_fingerprint()
    results["source_changed_during_run"] = source != results["env"]["aiobatch_source"]
    results["targets"] = [t.as_dict() for t in targets(results)]
    results["correctness_failures"] = correctness(results) + results.get("results", {}).get(
        "problems", []
    )
    results["duration_s"] = time.perf_counter() - started
    return results


def write(results: dict[str, Any], cfg: Config, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / cfg.outputs["json"]]
    written[0].write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    if "scan" in results:
        from .chart import draw_scan_chart

        written.append(draw_scan_chart(results, out / cfg.outputs["chart"]))
    summary = out / cfg.outputs["summary"]
    summary.write_text(summary_markdown(results) + results_markdown(results))
    written.append(summary)
    return written


def results_markdown(results: dict[str, Any]) -> str:
    """The results-download section (targets: 25x the official path, 0.9x bare)."""
    r = results.get("results")
    if not r:
        return ""
    plan, ips, mem = r["plan"], r["items_per_s"], r["memory"]
    verdict = [
        ("results vs official >= 25x", r["vs_official"] >= 25, f"{r['vs_official']:.1f}x"),
        ("results vs bare >= 0.9x", r["vs_bare"] >= 0.9, f"{r['vs_bare']:.2f}x"),
    ]
    lines = [
        "",
        f"## Results download ({plan['latency_ms']:g} ms latency, concurrency "
        f"{plan['concurrency']}, {r['counts'].get('aiobatch', 0):,} items)",
        "",
        "| client | items/s |",
        "| --- | ---: |",
        f"| aiobatch `iter_results` | {ips['aiobatch']:,.0f} |",
        f"| bare aiohttp loop | {ips['bare']:,.0f} |",
        f"| official path (one result at a time) | {ips['official']:,.1f} |",
        "",
        *(f"- {'PASS' if ok else 'MISS'} {name}: {shown}" for name, ok, shown in verdict),
        f"- peak RSS streaming {mem['count']} results of ~{mem['result_bytes'] / 1e6:.0f} MB at "
        f"concurrency {mem['concurrency']}: {mem['above_baseline_mib']:.0f} MiB above baseline",
        f"- {r['official_note']}",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small and fast (under a minute)")
    parser.add_argument(
        "--only",
        default=",".join(ALL_PARTS),
        help=f"comma-separated subset of {','.join(ALL_PARTS)} (default: all)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if unknown := set(parts) - set(ALL_PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(ALL_PARTS)}")
    cfg = QUICK if args.quick else FULL
    results = asyncio.run(run(cfg, parts))
    print()
    print(render(results))
    print(results_markdown(results))
    for path in write(results, cfg, args.results_dir):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"done in {results['duration_s']:.0f} s")
    return 1 if results["correctness_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

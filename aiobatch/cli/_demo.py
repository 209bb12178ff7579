"""``aiobatch demo`` (a large simulated job, streamed and summarised) and
``aiobatch sim`` (the simulator as a standalone server)."""

from __future__ import annotations

import argparse
import importlib
import time
from typing import Any

from .._client import BatchClient
from ._context import (
    CliError,
    Context,
    HelpFormatter,
    UsageError,
    concurrency_int,
    non_negative_float,
    page_size_int,
    positive_int,
)
from ._formats import DEMO, add_format_option, write_stdout
from ._items import scan_items
from ._summary import DemoRun, Summary

__all__ = ["register"]

_RAW = HelpFormatter
DEMO_JOB = "bjb-demo-0001"


def _testing() -> Any:
    try:
        return importlib.import_module("aiobatch.testing")
    except ImportError as exc:  # pragma: no cover - the simulator ships with aiobatch
        raise UsageError(f"the simulator is not available ({exc})") from None


async def cmd_demo(ctx: Context) -> int:
    a = ctx.args
    testing = _testing()
    job = testing.SimJob(job_id=DEMO_JOB, total_items=a.items, seed=a.seed)
    faults = testing.Faults(latency_ms=a.latency_ms, jitter_ms=a.latency_ms / 2)
    ctx.subject = f"job {DEMO_JOB}"
    summary = Summary(DEMO_JOB)
    total = not a.no_total_size
    sim = testing.Simulator(jobs=[job], faults=faults, api_key="demo-key", total_size=total)
    async with sim:
        ctx.note(
            f"aiobatch demo: simulated job {DEMO_JOB} with {a.items:,} items at {sim.base_url} "
            f"(~{a.latency_ms:g} ms per request"
            + ("" if total else "; the server sends no total_size")
            + ")"
        )
        ctx.note(
            f"streaming pages of {a.page_size:,}, {a.concurrency} requests in flight, in order…"
        )
        started = time.perf_counter()
        async with BatchClient(sim.api_key, base_url=sim.base_url) as client:
            progress = await scan_items(
                ctx,
                client,
                DEMO_JOB,
                status=None,
                on_page=lambda page, _: summary.add(page.items),
                description="streaming",
            )
        elapsed = max(time.perf_counter() - started, 1e-9)
        requests = sim.stats.requests
        peak = sim.stats.peak_in_flight
    run = DemoRun(summary, elapsed, requests, peak, progress.pages, progress.retries)
    write_stdout(ctx, DEMO, [run])
    return 0


async def cmd_sim(ctx: Context) -> int:
    cli = importlib.import_module("aiobatch.testing._cli")
    try:
        await cli.serve(ctx.args, out=ctx.stdout)
    except OSError as exc:  # the port is taken, or the address is not ours
        raise CliError(f"cannot start the simulator: {exc}") from None
    return 0


def register(sub: Any, general: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        help="stream a large simulated job, with progress and a summary",
        description="Start the simulator in this process with one large job, stream all "
        "of its items (pages fetched concurrently, delivered in order) with a progress "
        "bar, then print the per-status counts, the most common errors and the "
        "throughput achieved.  Needs no API key and no network.",
        parents=[general],
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch demo
  aiobatch demo --items 1000000 --concurrency 32
  aiobatch demo --items 2000 --format json
  aiobatch demo --no-total-size""",
    )
    p.add_argument(
        "--items",
        type=positive_int,
        default=300_000,
        metavar="N",
        help="items in the job (default: 300,000)",
    )
    p.add_argument("--page-size", type=page_size_int, default=1000, metavar="N")
    p.add_argument("--concurrency", type=concurrency_int, default=16, metavar="N")
    p.add_argument(
        "--latency-ms",
        type=non_negative_float,
        default=10.0,
        metavar="MS",
        help="simulated server latency per request (default: 10)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--top", type=positive_int, default=5, metavar="N")
    p.add_argument(
        "--no-total-size",
        action="store_true",
        help="the simulator leaves total_size out of item listings (the API may: it is "
        "not published whether it sends it)",
    )
    add_format_option(p, DEMO, default="table")
    p.set_defaults(handler=cmd_demo, filter_mode="auto")

    p = sub.add_parser(
        "sim",
        help="run the batch API simulator (for trying the CLI and for tests)",
        description="Serve a simulated LlamaCloud batch-processing API on a local port "
        "until Ctrl-C.  Point aiobatch at it with --base-url and the printed API key.",
        parents=[general],
        formatter_class=_RAW,
    )
    try:
        cli = importlib.import_module("aiobatch.testing._cli")
    except ImportError:  # pragma: no cover
        p.set_defaults(handler=_no_sim)
        return
    cli.add_arguments(p)
    p.epilog = (
        "examples:\n"
        "  aiobatch sim --items 100000 --latency-ms 30\n"
        "  aiobatch sim --port 8080 --rate-limit every=20 --server-error p=0.01\n"
        "  aiobatch items summary --base-url http://127.0.0.1:8080 --api-key test-key \\\n"
        "      --job-id bjb-sim-0001\n\n" + (p.epilog or "")
    )
    p.set_defaults(handler=cmd_sim)


async def _no_sim(ctx: Context) -> int:  # pragma: no cover
    raise UsageError("the simulator (aiobatch.testing) is not available")

"""``python -m aiobatch.testing``: the simulator as a standalone server.

``add_arguments`` / ``build_parser`` / ``serve`` / ``run_simulator`` are public
so ``aiobatch sim`` can wrap them.  The startup banner is also the protocol
``SimulatorProcess`` reads: ``base_url:``, ``api_key:`` and ``job:`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from ._batches import SimBatch
from ._faults import EMPTY_STYLES, Faults, Trigger
from ._jobs import SimJob
from ._layout import DEFAULT_MIX, STATUSES
from ._server import Simulator
from ._webhook_bodies import ENVELOPES

__all__ = ["add_arguments", "build_parser", "main", "run_simulator", "serve", "simulator_from_args"]

_TRIGGER_HELP = "TRIGGER, e.g. 'first=2', 'every=10', 'p=0.05', 'offset=500x2', 'inflight>8'"
_TRIGGERS = {
    "rate_limit": "429 with Retry-After",
    "server_error": "a 5xx (see --error-status)",
    "html": "200 with an HTML body",
    "stall": "no answer until the client gives up",
    "reset": "connection reset before the response",
    "reset_mid_body": "connection reset mid-body",
    "truncate": "body shorter than its Content-Length",
    "chunked_cut": "chunked body missing its last chunk",
    "unframed_cut": "no Content-Length, connection closed mid-JSON",
    "trickle": "body trickled at --trickle-bps",
    "empty_page": "200 with no items but the true total (see --empty-style)",
    "stale_page": "the previous page (offset - limit), at offset >= limit",
}
#: Cursor faults of the v2 batch listing (their triggers default to on=batches).
_CURSOR_TRIGGERS = {
    "repeat_token": "v2 batch list: the page hands back the token it was asked with",
    "empty_token_page": "v2 batch list: an empty page that still carries a token",
}


def _batch_trigger(text: str) -> Trigger:
    return Trigger.parse(text if "on=" in text else f"{text},on=batches")


def _mix(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        name, _, weight = term.partition("=")
        if name not in STATUSES:
            raise argparse.ArgumentTypeError(f"unknown status {name!r} in mix")
        out[name] = float(weight)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser`` (for ``aiobatch sim``)."""
    srv = parser.add_argument_group("server")
    srv.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    srv.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    srv.add_argument("--api-key", default="test-key")
    srv.add_argument("--default-limit", type=int, default=100)
    srv.add_argument("--max-limit", type=int, default=1000)
    srv.add_argument(
        "--no-total-size",
        action="store_true",
        help="leave total_size out of item listings (whether the API sends it is not published)",
    )
    srv.add_argument(
        "--page-cache-mb",
        type=int,
        default=32,
        help="encoded pages kept for reuse (benchmarks: room for every page size scanned)",
    )
    data = parser.add_argument_group("jobs")
    data.add_argument("--items", type=int, default=1000, help="items per job")
    data.add_argument("--jobs", type=int, default=1, help="number of jobs")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--running", action="store_true", help="jobs progress in real time")
    data.add_argument("--rate", type=float, default=50.0, help="items started per second")
    data.add_argument("--concurrency", type=int, default=8, help="items in flight per job")
    data.add_argument("--job-type", default="parse", choices=("parse", "extract", "classify"))
    default_mix = ",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items())
    data.add_argument("--mix", type=_mix, default=None, help=f"status weights ({default_mix})")
    data.add_argument(
        "--batches", type=int, default=0, metavar="N", help="v2 batches to serve (default: 0)"
    )
    f = parser.add_argument_group("faults")
    f.add_argument("--latency-ms", type=float, default=0.0)
    f.add_argument("--jitter-ms", type=float, default=0.0)
    f.add_argument("--fault-seed", type=int, default=0)
    for name, what in _TRIGGERS.items():
        flag = "--" + name.replace("_", "-")
        f.add_argument(flag, type=Trigger.parse, default=None, metavar="TRIGGER", help=what)
    for name, what in _CURSOR_TRIGGERS.items():
        flag = "--" + name.replace("_", "-")
        f.add_argument(flag, type=_batch_trigger, default=None, metavar="TRIGGER", help=what)
    f.add_argument("--retry-after", default="1", help="Retry-After of 429s ('' omits it)")
    f.add_argument("--retry-after-ms", default=None)
    f.add_argument("--error-status", type=int, default=503)
    f.add_argument("--error-retry-after", default=None)
    f.add_argument("--should-retry", default=None, help="x-should-retry on 429/5xx")
    f.add_argument("--cut-fraction", type=float, default=0.5)
    f.add_argument("--trickle-bps", type=float, default=20_000.0)
    f.add_argument("--cap-limit", type=int, default=None, help="silently serve at most N")
    f.add_argument("--omit-total-size", action="store_true")
    f.add_argument("--total-size-factor", type=float, default=1.0)
    f.add_argument("--total-size-delta", type=int, default=0)
    f.add_argument("--ignore-offset", action="store_true")
    f.add_argument("--next-page-token", action="store_true")
    f.add_argument("--extra-fields", action="store_true")
    f.add_argument("--unknown-status-every", type=int, default=0)
    f.add_argument(
        "--empty-style",
        choices=EMPTY_STYLES,
        default="empty",
        help="--empty-page body: items [], items null, or no items key",
    )
    f.add_argument(
        "--clamp-offset", action="store_true", help="offset >= total serves the last page"
    )
    f.add_argument(
        "--unstable-ties",
        type=int,
        default=0,
        metavar="N",
        help="order within aligned groups of N items changes on every request",
    )
    f.add_argument(
        "--webhook-shuffle",
        action="store_true",
        help="v2 batch webhooks: each round of deliveries in a seeded random order",
    )
    f.add_argument(
        "--webhook-duplicate-every",
        type=int,
        default=0,
        metavar="N",
        help="v2 batch webhooks: every N-th delivery is sent twice",
    )
    f.add_argument(
        "--webhook-attempts",
        type=int,
        default=3,
        metavar="N",
        help="v2 batch webhooks: POSTs of one event at most while the receiver answers "
        "non-2xx or cannot be reached (default: 3)",
    )
    f.add_argument(
        "--webhook-envelope",
        choices=("drawn", *ENVELOPES),
        default="drawn",
        help="v2 batch webhooks: the body's shape (the real one is unpublished); "
        "drawn: one per event from the seed",
    )
    parser.epilog = (
        f"Trigger syntax: {_TRIGGER_HELP}; terms are OR-ed, plus times=N and on=ENDPOINT."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aiobatch.testing",
        description="Serve a simulated LlamaCloud batch-processing API.",
    )
    add_arguments(parser)
    return parser


def faults_from_args(ns: argparse.Namespace) -> Faults:
    return Faults(
        seed=ns.fault_seed,
        latency_ms=ns.latency_ms,
        jitter_ms=ns.jitter_ms,
        retry_after=ns.retry_after or None,
        retry_after_ms=ns.retry_after_ms,
        error_status=ns.error_status,
        error_retry_after=ns.error_retry_after,
        should_retry=ns.should_retry,
        cut_fraction=ns.cut_fraction,
        trickle_bytes_per_sec=ns.trickle_bps,
        cap_limit=ns.cap_limit,
        omit_total_size=ns.omit_total_size,
        total_size_factor=ns.total_size_factor,
        total_size_delta=ns.total_size_delta,
        ignore_offset=ns.ignore_offset,
        next_page_token=ns.next_page_token,
        extra_fields=ns.extra_fields,
        unknown_status_every=ns.unknown_status_every,
        empty_style=ns.empty_style,
        clamp_offset=ns.clamp_offset,
        unstable_ties=ns.unstable_ties,
        webhook_shuffle=getattr(ns, "webhook_shuffle", False),
        webhook_duplicate_every=getattr(ns, "webhook_duplicate_every", 0),
        webhook_attempts=getattr(ns, "webhook_attempts", 3),
        webhook_envelope=getattr(ns, "webhook_envelope", "drawn"),
        **{name: getattr(ns, name) for name in _TRIGGERS},
        **{name: getattr(ns, name) for name in _CURSOR_TRIGGERS},
    )


def simulator_from_args(ns: argparse.Namespace) -> Simulator:
    jobs = [
        SimJob(
            job_id=f"bjb-sim-{k + 1:04d}",
            total_items=ns.items,
            seed=ns.seed + k,
            mix=ns.mix or dict(DEFAULT_MIX),
            job_type=ns.job_type,
            running=ns.running,
            rate=ns.rate,
            concurrency=ns.concurrency,
        )
        for k in range(ns.jobs)
    ]
    sim = Simulator(
        jobs,
        faults=faults_from_args(ns),
        api_key=ns.api_key or None,
        host=ns.host,
        port=ns.port,
        default_limit=ns.default_limit,
        max_limit=ns.max_limit,
        seed=ns.seed,
        page_cache_bytes=max(0, ns.page_cache_mb) * 1024 * 1024,
        total_size=not ns.no_total_size,
    )
    count = getattr(ns, "batches", 0)
    now = sim.clock.now()
    for k in range(count):  # a minute apart, the newest still running
        created = now - 60 * (count - 1 - k)
        sim.batches.add(SimBatch(batch_id=f"bat-sim-{k + 1:04d}", created_at=created, files=20))
    return sim


async def serve(
    ns: argparse.Namespace, *, out: TextIO | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run until ``stop`` is set, SIGINT or SIGTERM; print the banner once listening."""
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        async with simulator_from_args(ns) as sim:
            lines = [
                "aiobatch simulator listening (Ctrl-C to stop)",
                f"base_url: {sim.base_url}",
                f"api_key: {sim.api_key or '(none: auth disabled)'}",
            ]
            lines += [
                f"job: {j.job_id} items={j.total_items} seed={j.seed} running={j.running}"
                for j in sim.jobs
            ]
            now = sim.clock.now()
            lines += [
                f"batch: {b.batch.batch_id} files={b.batch.files} status={b.status(now)}"
                for b in sim.batches.ordered()
            ]
            if not sim.total_size:
                lines.append("total_size: omitted from item listings")
            lines.append(f"faults: {sim.faults.describe()}")
            print("\n".join(lines), file=out, flush=True)
            await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def run_simulator(ns: argparse.Namespace) -> int:
    """Blocking entry point: serve ``ns`` until interrupted; the exit code."""
    try:
        asyncio.run(serve(ns))
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        return 130
    except OSError as exc:  # e.g. the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_simulator(build_parser().parse_args(argv))

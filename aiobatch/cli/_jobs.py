"""``aiobatch jobs list | status | cancel | watch``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from .._errors import RetryFailedError
from ..models import BatchJob, BatchJobStatus, JobStatus
from ..resources.jobs import DEFAULT_SETTLE
from ..workflows import RetryChunk, RetryPlan
from ._context import (
    ITEM_STATUSES,
    MAX_POLL_INTERVAL,
    Context,
    HelpFormatter,
    UsageError,
    add_poll_options,
    add_status_option,
    connection_options,
    identifier,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from ._failures import EXIT_API
from ._formats import (
    CANCEL,
    JOB_PAGE,
    JOB_STATUS,
    JOBS,
    RETRY,
    add_format_option,
    number,
    write_stdout,
)
from ._items import CSV_RAW_HELP

__all__ = ["register"]

_RAW = HelpFormatter
JOB_STATUSES = [s.value for s in JobStatus]


async def cmd_list(ctx: Context) -> int:
    a = ctx.args
    filters: dict[str, Any] = {
        "directory_id": a.directory_id,
        "job_type": a.job_type,
        "status": a.status,
    }
    async with ctx.client() as client:
        if a.limit is not None or a.offset is not None:
            page = await client.jobs.list(limit=a.limit, offset=a.offset, **filters)
            write_stdout(ctx, JOB_PAGE, [page])
            return 0
        jobs: list[BatchJob] = []
        async with client.jobs.iter(**filters) as it:
            ctx.scan = it.progress
            async for job in it:
                jobs.append(job)
    write_stdout(ctx, JOBS, jobs)
    return 0


async def cmd_status(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    async with ctx.client() as client:
        st = await client.jobs.get(a.job_id)
    write_stdout(ctx, JOB_STATUS, [st])
    return 0


async def cmd_cancel(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    async with ctx.client() as client:
        res = await client.jobs.cancel(a.job_id, reason=a.reason)
    write_stdout(ctx, CANCEL, [res])
    return 0


async def _follow(ctx: Context, *, limit: float | None = None) -> BatchJobStatus:
    """Wait for ``--job-id`` to end: a live bar on a terminal, else a line per change."""
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    async with ctx.client() as client:
        with ctx.progress(f"job {a.job_id}", unit="items") as bar:

            def show(st: BatchJobStatus) -> None:
                j = st.job
                done = j.processed_items or 0
                # Cancelled items are not "processed": the percentage reaches 100.
                settled = max(done, round(st.progress_percentage / 100 * j.total_items))
                note = (
                    f"{j.status} · processed {done:,} · failed {number(j.failed_items)} · "
                    f"skipped {number(j.skipped_items)}"
                )
                bar.update(settled, j.total_items or None, note)
                if not ctx.interactive:
                    ctx.note(
                        f"job {j.id}: {j.status}, {done:,}/{j.total_items:,} processed "
                        f"({st.progress_percentage:.1f}%), {number(j.failed_items)} failed, "
                        f"{number(j.skipped_items)} skipped"
                    )

            return await client.jobs.wait(
                a.job_id,
                poll_interval=a.interval,
                max_interval=max(a.interval, MAX_POLL_INTERVAL),
                timeout=limit,
                on_progress=show,
            )


async def cmd_watch(ctx: Context) -> int:
    st = await _follow(ctx)
    write_stdout(ctx, JOB_STATUS, [st])
    if ctx.args.exit_status and st.job.status != JobStatus.COMPLETED:
        return 1
    return 0


async def cmd_wait(ctx: Context) -> int:
    """Exit 0 completed, 1 failed or cancelled, 3 timed out (``_failures``)."""
    st = await _follow(ctx, limit=ctx.args.wait_timeout)
    write_stdout(ctx, JOB_STATUS, [st])
    return 0 if st.job.status == JobStatus.COMPLETED else EXIT_API


def _state_path(ctx: Context) -> Path:
    a = ctx.args
    if a.state:
        return Path(a.state)
    return Path(f".aiobatch-retry-{re.sub(r'[^A-Za-z0-9._-]', '_', a.job_id)}.json")


def _read_state(path: Path, job_id: str) -> RetryPlan | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        plan = RetryPlan.from_json(json.loads(text))
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise UsageError(f"retry state file {path} is unreadable or was edited: {exc}") from None
    if plan.source_job_id != job_id:
        raise UsageError(
            f"retry state file {path} belongs to job {plan.source_job_id}, not {job_id}: "
            "pass --state FILE"
        )
    return plan


def _job_config(ctx: Context) -> dict[str, Any] | None:
    raw = ctx.args.job_config
    if raw is None:
        return None
    try:
        text = Path(raw[1:]).read_text(encoding="utf-8") if raw.startswith("@") else raw
        config = json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--job-config: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError("--job-config must be a JSON object")
    return config


async def cmd_retry_failed(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    state = _state_path(ctx)
    earlier = _read_state(state, a.job_id)  # checked here to name the file and the option
    if earlier is not None and (earlier.created or earlier.uncertain):
        ctx.note(f"resuming from {state}: {len(earlier.created)} new job(s) created before")
    doubt = {c.key for c in earlier.uncertain} if earlier is not None else set()
    if doubt:
        then = f"waiting until {a.settle:g} s after each attempt" if a.settle else "at once"
        ctx.note(
            f"looking for the jobs of {len(doubt)} create(s) whose outcome is unknown "
            f"(submitting the items again, {then}, if none shows)"
        )
    config = _job_config(ctx)

    def created(chunk: RetryChunk) -> None:
        if chunk.found:
            made = f"the earlier create of {chunk.size:,} items made it"
            ctx.note(f"found job {chunk.job_id}: {made}")
        else:
            ctx.note(f"created job {chunk.job_id} ({chunk.size:,} items)")

    async with ctx.client() as client:
        try:
            plan = await client.jobs.retry_failed(
                a.job_id,
                statuses=a.status or ["failed"],
                job_config=config,
                chunk_size=a.chunk_size,
                dry_run=a.dry_run,
                state=state,  # saved before each create; a dry run only reads it
                settle=a.settle,
                on_created=created,  # and each job found: said at once, even if interrupted later
            )
        except RetryFailedError as exc:
            write_stdout(ctx, RETRY, [exc.plan])
            raise
    write_stdout(ctx, RETRY, [plan])
    if plan.uncertain and not a.dry_run:
        ctx.warn(_uncertain(plan))
        return EXIT_API
    return 0


def _uncertain(plan: RetryPlan) -> str:
    names = sorted({j for c in plan.uncertain for j in c.candidates})
    look = f"look at job(s) {', '.join(names)}" if names else "run the same command again later"
    return (
        f"{len(plan.uncertain)} earlier create(s) may or may not have made a job "
        f"({sum(c.size for c in plan.uncertain):,} items, not resubmitted): {look}"
    )


def register(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    jobs = sub.add_parser(
        "jobs",
        help="batch jobs: list, status, cancel, watch, wait",
        description="List batch jobs, show one, cancel one, watch or wait for one until it ends.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch jobs list --status running
  aiobatch jobs status --job-id bjb-123
  aiobatch jobs watch --job-id bjb-123
  aiobatch jobs wait --job-id bjb-123 --timeout 3600 && echo completed
  aiobatch jobs cancel --job-id bjb-123 --reason "wrong directory\"""",
    )
    jsub = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = jsub.add_parser(
        "list",
        help="list jobs (one page with --limit/--offset, else all)",
        description="List batch jobs, newest state from the server.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch jobs list
  aiobatch jobs list --status running --job-type parse --format jsonl
  aiobatch jobs list --limit 10 --format json""",
    )
    add_status_option(p, JOB_STATUSES)
    p.add_argument("--job-type", choices=["parse", "extract", "classify"])
    p.add_argument("--directory-id", type=identifier, metavar="ID")
    p.add_argument("--limit", type=positive_int, metavar="N")
    p.add_argument("--offset", type=non_negative_int, metavar="N")
    add_format_option(p, JOBS, JOB_PAGE, default="table")
    p.add_argument("--csv-raw", action="store_true", help=CSV_RAW_HELP)
    p.set_defaults(handler=cmd_list)

    p = jsub.add_parser(
        "status",
        help="one job and its progress",
        description="Show one job: status, progress and item counts.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch jobs status --job-id bjb-123
  aiobatch jobs status --job-id bjb-123 --format json | jq .progress_percentage""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    add_format_option(p, JOB_STATUS, default="table")
    p.set_defaults(handler=cmd_status)

    p = jsub.add_parser(
        "cancel",
        help="cancel a job",
        description="Cancel a job: pending items become cancelled; items in flight may finish.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch jobs cancel --job-id bjb-123 --reason "wrong directory\"""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    p.add_argument("--reason", help="recorded with the cancellation")
    add_format_option(p, CANCEL, default="table")
    p.set_defaults(handler=cmd_cancel)

    p = jsub.add_parser(
        "watch",
        help="follow a job until it ends, with a progress bar",
        description="Poll a job until it reaches a terminal status (completed, failed, "
        "cancelled), showing processed / failed / skipped items.  The progress bar is "
        "drawn when stderr is a terminal; otherwise a line is logged whenever the counts "
        "change.  The final status goes to stdout.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch jobs watch --job-id bjb-123
  aiobatch jobs watch --job-id bjb-123 --interval 10 --exit-status && echo done""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    add_poll_options(p, "job", timeout=False)
    p.add_argument(
        "--exit-status",
        action="store_true",
        help="exit with 1 when the job ends failed or cancelled",
    )
    add_format_option(p, JOB_STATUS, default="table")
    p.set_defaults(handler=cmd_watch)

    p = jsub.add_parser(
        "wait",
        help="wait until a job ends; the exit code says how",
        description="Poll a job until it reaches a terminal status, like `watch`, and exit "
        "0 when it completed, 1 when it failed or was cancelled, 3 when --timeout ran out "
        "(a progress bar on a terminal, otherwise a line per change on stderr; the final "
        "status on stdout).  Here --timeout bounds the whole wait; give the per-request "
        "timeout before the command (`aiobatch --timeout 30 jobs wait ...`).",
        # A connection group of its own: "resolve" edits the actions it overrides,
        # and the shared group's --timeout must stay as every other command has it.
        parents=[connection_options(), *common[1:]],
        formatter_class=_RAW,
        conflict_handler="resolve",
        epilog="""examples:
  aiobatch jobs wait --job-id bjb-123
  aiobatch jobs wait --job-id bjb-123 --timeout 3600 --interval 10 -q --format json""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    add_poll_options(p, "job", timeout=True)
    add_format_option(p, JOB_STATUS, default="table")
    p.set_defaults(handler=cmd_wait)

    p = jsub.add_parser(
        "retry-failed",
        help="re-run a job's failed items as new jobs",
        description="Scan a job for items with the given statuses (default: failed) and "
        "create new jobs of at most --chunk-size of them, with the job's original "
        "configuration (from its items' processing results) unless --job-config is "
        "given.  Prints the new job ids.  The plan is kept in a state file (--state, "
        "default ./.aiobatch-retry-JOB.json), written before each create is sent: if a "
        "create fails or the command is interrupted, run the same command again and it "
        "creates only what is missing, never an item twice.  A create whose outcome is "
        "unknown (a timeout, a 5xx, a lost connection) is settled by looking for its job "
        "among the jobs created since (a job is that chunk's when its items are exactly "
        "the chunk's); with none found --settle seconds (default 60) after the attempt, "
        "the items are submitted again (the command waits out the rest of that time "
        "first).  A chunk that jobs of its size partly hold stays unsettled: exit 1, "
        "naming the jobs to look at.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch jobs retry-failed --job-id bjb-123 --dry-run
  aiobatch jobs retry-failed --job-id bjb-123 --status failed --status cancelled
  aiobatch jobs retry-failed --job-id bjb-123 --chunk-size 500 --format json
  aiobatch jobs retry-failed --job-id bjb-123 --job-config @config.json""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    add_status_option(
        p,
        ITEM_STATUSES,
        action="append",
        help="item status to re-run (repeatable; default: failed)",
    )
    p.add_argument(
        "--chunk-size",
        type=positive_int,
        default=1000,
        metavar="N",
        help="items per new job (default: 1000)",
    )
    p.add_argument("--dry-run", action="store_true", help="only count and plan; create nothing")
    p.add_argument(
        "--job-config",
        metavar="JSON",
        help="the configuration of the new jobs, as JSON or @FILE (default: the original)",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="where the created jobs are recorded (default: ./.aiobatch-retry-JOB.json)",
    )
    p.add_argument(
        "--settle",
        type=non_negative_float,
        default=DEFAULT_SETTLE,
        metavar="SECONDS",
        help="how long after an uncertain create its job must be listed, if it was made, "
        f"before its items are submitted again (default: {DEFAULT_SETTLE:g})",
    )
    add_format_option(p, RETRY, default="table")
    p.set_defaults(handler=cmd_retry_failed, status=None)

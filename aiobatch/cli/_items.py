"""``aiobatch items list | summary | results`` (``export`` lives in ``_export``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .._client import BatchClient
from .._paging import Page, ScanProgress
from ..checkpoint import Checkpoint
from ..models import BatchItem
from ._context import (
    ITEM_STATUSES,
    Context,
    HelpFormatter,
    add_status_option,
    identifier,
    non_negative_int,
    positive_int,
)
from ._formats import (
    ITEM_PAGE,
    ITEMS,
    RESULTS,
    SUMMARY,
    add_format_option,
    stdout_writer,
    write_stdout,
)
from ._summary import Summary

__all__ = ["CSV_RAW_HELP", "register", "scan_items"]

_RAW = HelpFormatter
CSV_RAW_HELP = (
    "write CSV cells as sent: by default a cell starting with = + - @ (or a tab or "
    "carriage return) gets a leading ' so spreadsheets do not run it as a formula"
)


async def scan_items(
    ctx: Context,
    client: BatchClient,
    job_id: str,
    *,
    status: str | None,
    on_page: Callable[[Page[BatchItem], ScanProgress], None],
    checkpoint: Checkpoint | None = None,
    description: str | None = None,
) -> ScanProgress:
    """Stream every page of a job's items through ``on_page(page, progress)``, in
    order, with a progress bar on stderr when it is a terminal.  Returns the
    scan's counters.  ``checkpoint``: where to start, and the filter mode its
    offsets are counted in (``on_page`` acks what it wrote)."""
    a = ctx.args
    pages = client.job_items.iter_pages(
        job_id,
        status=status,
        page_size=a.page_size,
        concurrency=a.concurrency,
        filter_mode=a.filter_mode,
        checkpoint=checkpoint,
    )
    ctx.scan = pages.progress  # what a failure report may need (the drift seen)
    label = description or (f"{status} items" if status else "items")
    with ctx.progress(label) as bar:
        async with pages:
            async for page in pages:
                p = pages.progress
                on_page(page, p)
                note = f"{p.items:,} {status}" if status and p.filter_mode == "client" else ""
                if p.retries:
                    note += f"  {p.retries} retries"
                bar.update(p.next_offset, p.total, note.strip())
    return pages.progress


# --- list, summary, results -------------------------------------------------


async def cmd_list(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    async with ctx.client() as client:
        if a.limit is not None or a.offset is not None:
            # One page, exactly as the official `job-items list` fetches it.
            page = await client.job_items.list(
                a.job_id, limit=a.limit, offset=a.offset, status=a.status
            )
            write_stdout(ctx, ITEM_PAGE, [page])
            return 0
        writer = stdout_writer(ctx, ITEMS)
        await scan_items(
            ctx, client, a.job_id, status=a.status, on_page=lambda page, _: writer.write(page.items)
        )
        writer.close()
    return 0


async def cmd_summary(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    summary = Summary(a.job_id)
    async with ctx.client() as client:
        await scan_items(
            ctx,
            client,
            a.job_id,
            status=None,
            on_page=lambda page, _: summary.add(page.items),
            description="summarising",
        )
    write_stdout(ctx, SUMMARY, [summary])
    return 0


async def cmd_results(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"item {a.item_id}"
    async with ctx.client() as client:
        res = await client.job_items.get_processing_results(a.item_id, job_type=a.job_type)
    write_stdout(ctx, RESULTS, [res])
    return 0


# --- parser -----------------------------------------------------------------


def register(sub: Any, common: list[argparse.ArgumentParser], scan: argparse.ArgumentParser) -> Any:
    items = sub.add_parser(
        "items",
        help="the items of a batch job",
        description="List, summarise, export a batch job's items; show processing results.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch items list --job-id bjb-123 --status failed
  aiobatch items summary --job-id bjb-123
  aiobatch items export --job-id bjb-123 --status failed -o failed.jsonl
  aiobatch items results --item-id itm-456""",
    )
    isub = items.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = isub.add_parser(
        "list",
        help="list items (one page with --limit/--offset, else all of them)",
        description="List a job's items.  With --limit or --offset, exactly one page is "
        "fetched, like the official `llamacloud-prod beta:batch:job-items list`; without "
        "them every item is streamed, pages fetched concurrently and written in order.",
        parents=[*common, scan],
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch items list --job-id bjb-123 --status failed > failed.jsonl
  aiobatch items list --job-id bjb-123 --limit 20 --offset 40 --format json
  aiobatch items list --job-id bjb-123 --format table | less -S
  aiobatch items list --job-id bjb-123 --format csv > items.csv

--format json with --limit/--offset prints the API response; without them, a
JSON array of items.  jsonl (default) writes one item per line.  Both hold the
items as decoded: strings exactly as sent; fields aiobatch does not know, and
nulls, left out; timestamps with at most microseconds (.123456789Z: .123457Z).
CSV cells starting with = + - @ get a leading ' (spreadsheet formulas) unless
--csv-raw.""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    add_status_option(p, ITEM_STATUSES, help="only items with this status")
    p.add_argument("--limit", type=positive_int, metavar="N", help="one page of at most N items")
    p.add_argument(
        "--offset", type=non_negative_int, metavar="N", help="one page, skipping N items"
    )
    add_format_option(p, ITEMS, ITEM_PAGE, default="jsonl")
    p.add_argument("--csv-raw", action="store_true", help=CSV_RAW_HELP)
    p.set_defaults(handler=cmd_list)

    p = isub.add_parser(
        "summary",
        help="counts per status, top errors and skip reasons",
        description="Scan every item of a job and summarise it: items per status, the "
        "most common error messages and skip reasons, with percentages.",
        parents=[*common, scan],
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch items summary --job-id bjb-123
  aiobatch items summary --job-id bjb-123 --format json | jq '.statuses.failed.count'

Error and skip-reason shares are out of the items carrying an error / a reason.""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    add_format_option(p, SUMMARY, default="table")
    p.add_argument(
        "--top", type=positive_int, default=5, metavar="N", help="errors to show (default: 5)"
    )
    p.set_defaults(handler=cmd_summary)

    p = isub.add_parser(
        "results",
        help="processing results of one item",
        description="Show the processing results (parse / extract / classify outputs) of one item.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch items results --item-id itm-456
  aiobatch items results --item-id itm-456 --job-type parse --format table""",
    )
    p.add_argument("--item-id", required=True, type=identifier, metavar="ID")
    p.add_argument("--job-type", choices=["parse", "extract", "classify"])
    add_format_option(p, RESULTS, default="json")
    p.set_defaults(handler=cmd_results)
    return isub

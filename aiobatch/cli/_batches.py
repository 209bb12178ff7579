"""``aiobatch batches list | get | wait | cancel | create | download``: the v2 Batches API, with the
official CLI's flag names (``--batch-id``, ``--page-size``, ``--page-token``,
``--status``, ``--source-directory-id``, ``--expand``, ``--max-items``)."""

from __future__ import annotations

import argparse
from typing import Any

from .._client import BatchClient
from .._results import ResultStream
from ..models import Batch, BatchJobType, BatchStatus
from ._context import (
    MAX_POLL_INTERVAL,
    Context,
    HelpFormatter,
    add_poll_options,
    add_status_option,
    concurrency_int,
    connection_options,
    identifier,
    non_negative_int,
    page_size_int,
)
from ._directories import source_names
from ._download import INDEX_NAME, DownloadState, add_only_failed, file_as_item, run_download
from ._failures import EXIT_API
from ._formats import (
    BATCH,
    BATCH_PAGE,
    BATCHES,
    DOWNLOADS,
    add_format_option,
    write_cursor_listing,
    write_stdout,
)
from ._items import CSV_RAW_HELP
from ._webhook_flags import add_webhook_options, webhook_configurations

__all__ = ["register"]

_RAW = HelpFormatter
BATCH_STATUSES = [s.value for s in BatchStatus]
JOB_TYPES = [t.value for t in BatchJobType]


async def cmd_list(ctx: Context) -> int:
    a = ctx.args
    filters: dict[str, Any] = {
        "status": a.status,
        "source_directory_id": a.source_directory_id,
        "created_at_on_or_after": a.created_at_on_or_after,
        "created_at_on_or_before": a.created_at_on_or_before,
    }
    async with ctx.client() as client:
        return await write_cursor_listing(
            ctx,
            one_page=lambda token: client.batches.list(
                page_size=a.page_size, page_token=token, **filters
            ),
            pages=lambda **options: client.batches.iter_pages(**filters, **options),
            page_records=BATCH_PAGE,
            records=BATCHES,
        )


async def cmd_get(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"batch {a.batch_id}"
    async with ctx.client() as client:
        batch = await client.batches.get(a.batch_id, expand=a.expand)
    write_stdout(ctx, BATCH, [batch])
    return 0


async def cmd_cancel(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"batch {a.batch_id}"
    async with ctx.client() as client:
        batch = await client.batches.cancel(a.batch_id)
    write_stdout(ctx, BATCH, [batch])
    return 0


async def cmd_create(ctx: Context) -> int:
    a = ctx.args
    async with ctx.client() as client:
        batch: Batch = await client.batches.create(
            job_type=a.job_type,
            configuration_id=a.configuration_id,
            source_directory_id=a.source_directory_id,
            webhook_configurations=webhook_configurations(ctx),
            webhook_configuration_ids=a.webhook_configuration_id or None,
        )
    write_stdout(ctx, BATCH, [batch])
    return 0


async def cmd_wait(ctx: Context) -> int:
    """Exit 0 completed, 1 failed or cancelled, 3 timed out (``_failures``)."""
    a = ctx.args
    ctx.subject = f"batch {a.batch_id}"

    def show(batch: Batch) -> None:
        ctx.note(f"batch {batch.id}: {batch.status}")

    async with ctx.client() as client:
        batch = await client.batches.wait(
            a.batch_id,
            poll_interval=a.interval,
            max_interval=max(a.interval, MAX_POLL_INTERVAL),
            timeout=a.wait_timeout,
            on_progress=show,
        )
    write_stdout(ctx, BATCH, [batch])
    return 0 if batch.status == BatchStatus.COMPLETED else EXIT_API


async def cmd_download(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"batch {a.batch_id}"
    want = DownloadState(
        "",
        None,
        a.result,
        a.format,
        ctx.opt("organization_id"),
        ctx.opt("project_id"),
        batch_id=a.batch_id,
    )

    def open_results(
        client: BatchClient, state: DownloadState, only: frozenset[str] | None
    ) -> ResultStream[Any]:
        return client.batches.iter_results(
            a.batch_id,
            result=a.result,
            concurrency=a.concurrency,
            wait=a.wait,
            only=only,
            checkpoint=None if only else state.checkpoint,
        )

    names: dict[str, str] = {}

    async def load_names(client: BatchClient) -> None:
        names.update(await source_names(ctx, client, a.batch_id))

    return await run_download(
        ctx, want, open_results, lambda r: file_as_item(r, names), before=load_names
    )


def register(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    batches = sub.add_parser(
        "batches",
        help="v2 batches (/api/v2/batches): list, get, cancel, create, download",
        description="Work with v2 batches: a product job (parse_v2, extract_v2) run on "
        "every file of a source directory.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch batches list --status RUNNING
  aiobatch batches get --batch-id bat-123 --expand results
  aiobatch batches cancel --batch-id bat-123
  aiobatch batches download --batch-id bat-123 -o results/
  aiobatch batches create --job-type parse_v2 --configuration-id cfg-1 \\
      --source-directory-id dir-1""",
    )
    bsub = batches.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = bsub.add_parser(
        "list",
        help="list batches (every page, or one with --page-token)",
        description="List batches, newest first.  Without --page-token every page is "
        "read (up to --max-items); with it, that one page is printed and the token of "
        "the next goes to stderr.",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch batches list
  aiobatch batches list --status COMPLETED --source-directory-id dir-1 --format jsonl
  aiobatch batches list --created-at-on-or-after 2026-01-01T00:00:00Z --max-items 50""",
    )
    add_status_option(p, BATCH_STATUSES)
    p.add_argument("--source-directory-id", type=identifier, metavar="ID")
    p.add_argument("--created-at-on-or-after", metavar="ISO8601")
    p.add_argument("--created-at-on-or-before", metavar="ISO8601")
    p.add_argument("--page-size", type=page_size_int, metavar="N", help="batches per request")
    p.add_argument("--page-token", metavar="TOKEN", help="print only the page at this token")
    p.add_argument("--max-items", type=non_negative_int, metavar="N", help="stop after N")
    add_format_option(p, BATCHES, BATCH_PAGE, default="table")
    p.add_argument("--csv-raw", action="store_true", help=CSV_RAW_HELP)
    p.set_defaults(handler=cmd_list)

    p = bsub.add_parser(
        "get",
        help="one batch (with --expand results: its per-file jobs)",
        description="Show one batch.  --expand results adds each source file's job "
        "reference or error (none while the batch runs).",
        parents=common,
        formatter_class=_RAW,
        epilog="""examples:
  aiobatch batches get --batch-id bat-123
  aiobatch batches get --batch-id bat-123 --expand results --format json""",
    )
    p.add_argument("--batch-id", required=True, type=identifier, metavar="ID")
    p.add_argument("--expand", choices=["results"])
    add_format_option(p, BATCH, default="table")
    p.set_defaults(handler=cmd_get)

    p = bsub.add_parser(
        "wait",
        help="wait until a batch ends; the exit code says how",
        description="Poll a batch until COMPLETED, FAILED or CANCELLED (THROTTLED and "
        "unknown statuses are not an end) and exit 0 when it completed, 1 when it failed "
        "or was cancelled, 3 when --timeout ran out; a line per change on stderr, the "
        "final batch on stdout.  --timeout bounds the whole wait; give the per-request "
        "timeout before the command (`aiobatch --timeout 30 batches wait ...`).",
        parents=[connection_options(), *common[1:]],
        formatter_class=_RAW,
        conflict_handler="resolve",
        epilog="""examples:
  aiobatch batches wait --batch-id bat-123
  aiobatch batches wait --batch-id bat-123 --timeout 3600 --interval 10 --format json""",
    )
    p.add_argument("--batch-id", required=True, type=identifier, metavar="ID")
    add_poll_options(p, "batch", timeout=True)
    add_format_option(p, BATCH, default="table")
    p.set_defaults(handler=cmd_wait)

    p = bsub.add_parser(
        "cancel",
        help="cancel a batch",
        description="Cancel a batch; files not yet dispatched get no job.",
        parents=common,
        formatter_class=_RAW,
    )
    p.add_argument("--batch-id", required=True, type=identifier, metavar="ID")
    add_format_option(p, BATCH, default="table")
    p.set_defaults(handler=cmd_cancel)

    p = bsub.add_parser(
        "create",
        help="create a batch over a source directory",
        description="Create a batch: run a saved parse_v2 / extract_v2 configuration on "
        "every file of a source directory.  Not retried after a server error (it could "
        "create a second batch).",
        parents=common,
        formatter_class=_RAW,
    )
    p.add_argument("--job-type", required=True, choices=JOB_TYPES)
    p.add_argument("--configuration-id", required=True, type=identifier, metavar="ID")
    p.add_argument("--source-directory-id", required=True, type=identifier, metavar="ID")
    p.add_argument(
        "--webhook-configuration-id",
        action="append",
        type=identifier,
        metavar="ID",
        help="a saved webhook configuration to notify (repeatable)",
    )
    add_webhook_options(p)
    add_format_option(p, BATCH, default="table")
    p.set_defaults(handler=cmd_create)

    p = bsub.add_parser(
        "download",
        help="download every file's output (through its job), resumable",
        description="Download the output of every file of a finished batch, fetched "
        "through each file's job reference (parse_v2: markdown, text or json; extract_v2: "
        "json), many requests in flight, written in the batch's order.  Like `items "
        "download`: --format files writes one file per source file under a directory "
        "(named after the file's display_name in the source directory, made safe; the "
        f"file id when the directory cannot be read) and an index ({INDEX_NAME}); "
        "--format jsonl writes one JSON object per file; every file is written "
        "atomically; --resume continues an interrupted download.",
        parents=common,
        formatter_class=_RAW,
        epilog=f"""examples:
  aiobatch batches download --batch-id bat-123 -o results/
  aiobatch batches download --batch-id bat-123 --result text -o results/ --resume
  aiobatch batches download --batch-id bat-456 --format jsonl -o extract.jsonl
  aiobatch batches download --batch-id bat-123 -o results/ --wait

Each line of {INDEX_NAME}: item_id and item_name (the source file id), file,
status (ok/failed), error, error_kind (no_job: the batch made no job for the
file; failed; missing...), bytes.  Exit code 0 when every file's result was
written, 1 when some were not, 2 on usage errors.""",
    )
    p.add_argument("--batch-id", required=True, type=identifier, metavar="ID")
    p.add_argument(
        "--result",
        choices=["markdown", "text", "json"],
        help="which output (default: markdown for parse_v2, json for extract_v2)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="DIR|FILE", help="directory (files) or file"
    )
    add_format_option(
        p, DOWNLOADS, to="file", default="files", help="one file per file, or one JSON Lines file"
    )
    p.add_argument(
        "--concurrency",
        type=concurrency_int,
        default=8,
        metavar="N",
        help="job requests in flight (default: 8)",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait for the batch to end instead of failing"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an interrupted download")
    g.add_argument("--force", action="store_true", help="start over / write into a non-empty DIR")
    add_only_failed(g)
    p.set_defaults(handler=cmd_download)

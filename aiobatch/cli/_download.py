"""``aiobatch items download``: every item's output (parse markdown / text /
JSON, classify results) to a directory or one JSON Lines file, resumable.

Layout (``--format files``, the default): one file per item under DIR, named
from the item name made safe (``safe_name``), written to a temporary file and
renamed, so DIR never holds a half-written result; ``aiobatch-index.jsonl``
lists every item in order (id, name, file, status, error, bytes); and
``.aiobatch-download.json`` holds the checkpoint.  ``--format jsonl`` writes
one JSON object per item to ``-o FILE`` (whole lines, flushed), with the
checkpoint in ``FILE.aiobatch-state.json``.

Resume: results arrive in item order, and for each item the data is written
first (file renamed into place, or line flushed), then the index line, then the
item is acked on the state's ``Checkpoint`` and the state saved (with the length
of the index or output file).  A kill at any instant leaves the checkpoint at or
behind what is on disk: ``--resume`` cuts the index (or output) back to the
recorded length and continues with ``checkpoint=``; an item whose file was renamed in but not yet
indexed is fetched again and written under the same name.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .._client import BatchClient
from .._paging import FilterMode
from .._results import FileResult, ItemError, ResultContent, ResultStream
from ._context import (
    ITEM_STATUSES,
    CliError,
    Context,
    HelpFormatter,
    UsageError,
    add_status_option,
    concurrency_int,
    identifier,
    page_size_int,
)
from ._download_state import JSONL_STATE_SUFFIX, STATE_NAME, DownloadState
from ._durable import holds_no_data
from ._failures import is_permanent
from ._formats import DOWNLOADS, FORMATS, Options, add_format_option
from ._refetch import refetch
from ._result_files import INDEX_NAME, safe_name
from ._writers import Writer

__all__ = [
    "INDEX_NAME",
    "STATE_NAME",
    "DownloadState",
    "add_only_failed",
    "cmd_download",
    "file_as_item",
    "register",
    "run_download",
    "safe_name",
]

# --- the command --------------------------------------------------------------


def _prepare(
    ctx: Context, fmt: str, out: Path, state_path: Path, want: DownloadState
) -> DownloadState | None:
    a = ctx.args
    if a.resume:
        if state_path.exists():
            state = DownloadState.load(state_path)
            state.check_same(want, state_path)
            return state
        written = out / INDEX_NAME if fmt == "files" else out
        if written.exists() and not holds_no_data(written):
            raise UsageError(
                f"cannot resume: {out} has no state file ({state_path.name}); the download "
                "finished, or was not written by aiobatch.  Run with --force to start over"
            )
        ctx.note(f"nothing to resume at {out}: starting a new download")
        return None
    if a.force:
        return None
    if state_path.exists():
        raise UsageError(
            f"{out} holds an interrupted download: add --resume to continue it, or --force "
            "to start over"
        )
    if fmt == "files" and out.is_dir() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty: add --force to write into it anyway")
    if fmt == "jsonl" and out.exists():
        raise UsageError(f"{out} already exists: add --force to overwrite it")
    return None


def _state_path(fmt: str, out: Path) -> Path:
    if fmt == "files":
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out} is not a directory (--format files writes one file per item)")
        return out / STATE_NAME
    if out.is_dir():
        raise UsageError(f"{out} is a directory: --format jsonl writes one file")
    return out.with_name(out.name + JSONL_STATE_SUFFIX)


@dataclass(frozen=True)
class _Resume:
    rows: int
    bytes: int


def _open_sink(fmt: str, out: Path, state: DownloadState, *, fresh: bool) -> Writer[Any]:
    # A new download empties the index once it holds the lock (never before).
    resume = None if fresh else _Resume(state.items, state.length)
    return FORMATS[fmt].to_file(DOWNLOADS, out, resume, Options())


#: Opens the results stream of a download: ``(client, state, only) -> stream``
#: (``only``: the item ids to fetch again, or None for every item).
_Open = Callable[[BatchClient, DownloadState, frozenset[str] | None], ResultStream[Any]]


async def cmd_download(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    status = None if a.status == "all" else a.status
    want = DownloadState(
        a.job_id, status, a.result, a.format, ctx.opt("organization_id"), ctx.opt("project_id")
    )

    def open_results(
        client: BatchClient, state: DownloadState, only: frozenset[str] | None
    ) -> ResultStream[Any]:
        # The recorded mode wins: the checkpoint's offsets count its listing.
        mode: FilterMode = "auto" if state.checkpoint.filter_mode is not None else a.filter_mode
        return client.job_items.iter_results(
            a.job_id,
            result=a.result,
            status=status,
            concurrency=a.concurrency,
            page_size=a.page_size,
            filter_mode=mode,
            only=only,
            checkpoint=None if only else state.checkpoint,
        )

    return await run_download(ctx, want, open_results, lambda r: r)


class _FileItem(NamedTuple):
    """A v2 batch's file as the download writers see an item: named by its id."""

    item_id: str
    item_name: str


class _FileAsItem(NamedTuple):
    item: _FileItem
    content: ResultContent | None
    error: ItemError | None
    nbytes: int
    ok: bool
    next_offset: int


def file_as_item(r: FileResult, names: Mapping[str, str] | None = None) -> _FileAsItem:
    """A ``FileResult`` in the shape the download writers take: ``item_id`` the
    source file id, ``item_name`` its ``display_name`` from ``names`` (else the
    id), from which the safe file name is made."""
    name = (names or {}).get(r.file_id, r.file_id)
    return _FileAsItem(
        _FileItem(r.file_id, name), r.content, r.error, r.nbytes, r.ok, r.next_offset
    )


async def run_download(
    ctx: Context,
    want: DownloadState,
    open_results: _Open,
    adapt: Callable[[Any], Any],
    before: Callable[[BatchClient], Awaitable[None]] | None = None,
) -> int:
    """The download loop shared by ``items download`` and ``batches download``:
    checkpoint, atomic writers, index, resume."""
    a = ctx.args
    fmt = want.format
    out = Path(a.output)
    state_path = _state_path(fmt, out)
    if a.only_failed:
        return await refetch(
            ctx, fmt, out, state_path, lambda c, only: open_results(c, want, only), adapt, before
        )
    client = ctx.client()  # a missing key is reported before any file is touched
    resumed = _prepare(ctx, fmt, out, state_path, want)
    state = resumed or want
    sink = _open_sink(fmt, out, state, fresh=resumed is None)
    try:
        state.save(state_path)
    except CliError:  # a full disk before the first item: a new one was never started
        _discard(sink, state_path) if resumed is None else _close(sink)
        raise
    if resumed is not None:
        ctx.note(
            f"resuming {out}: {state.items:,} items done, continuing at offset "
            f"{state.checkpoint.offset:,}"
        )
    started = time.monotonic()
    new = 0
    try:
        async with client:
            if before is not None:  # e.g. the names of a batch's source files
                await before(client)
            results = open_results(client, state, None)
            with ctx.progress("downloading results") as bar:
                async with results:
                    async for r in results:
                        sink.write((adapt(r),))
                        state.length = sink.bytes
                        state.items += 1
                        state.ok += r.ok
                        state.failed += not r.ok
                        state.bytes += r.nbytes
                        state.checkpoint.ack(r)
                        state.save(state_path)
                        new += 1
                        listing = results.progress.listing
                        total = listing.total if listing is not None else None
                        note = f"{state.bytes / 1e6:,.1f} MB"
                        if state.failed:
                            note += f", {state.failed:,} failed"
                        bar.update(state.items, total, note)
    except BaseException as exc:
        _stopped(ctx, exc, sink, state, out, state_path, resumed=resumed is not None)
        raise
    sink.close()
    state_path.unlink(missing_ok=True)
    elapsed = max(time.monotonic() - started, 1e-9)
    where = f"{out}/ (index: {INDEX_NAME})" if fmt == "files" else str(out)
    extra = f", {new:,} in this run" if resumed is not None else ""
    ctx.note(
        f"downloaded {state.ok:,} of {state.items:,} results ({state.bytes / 1e6:,.1f} MB) to "
        f"{where}{extra} in {elapsed:.1f}s ({new / elapsed:,.0f} items/s)"
    )
    if state.failed:
        where = INDEX_NAME if fmt == "files" else str(out)
        ctx.note(f"{state.failed:,} items have no result: {where} says which and why")
        return 1
    return 0


def _close(sink: Writer[Any]) -> None:
    with contextlib.suppress(Exception):  # the failure to report is another
        sink.close()


def _discard(sink: Writer[Any], state_path: Path) -> None:
    """Remove what a new download wrote, its state first (the directory can
    then go too)."""
    state_path.unlink(missing_ok=True)
    discard = getattr(sink, "discard", None)
    if discard is None:
        _close(sink)
        return
    with contextlib.suppress(Exception):  # the failure to report is another
        discard()


def _stopped(
    ctx: Context,
    exc: BaseException,
    sink: Writer[Any],
    state: DownloadState,
    out: Path,
    state_path: Path,
    *,
    resumed: bool,
) -> None:
    """Leave the download resumable when a retry may get past ``exc``; after a
    permanent failure (401, 403, 404, 422) of a new download, remove what it
    wrote, as exports do: ``--resume`` would fail the same way."""
    if is_permanent(exc) and not resumed:
        _discard(sink, state_path)
        return
    _close(sink)
    with contextlib.suppress(CliError):  # a full disk: the last item's checkpoint stands
        state.save(state_path)
    then = "once the error below is fixed, " if is_permanent(exc) else ""
    ctx.note(
        f"{out} holds {state.items:,} complete items; {then}run the same command with "
        "--resume to continue"
    )


def register(isub: Any, common: list[argparse.ArgumentParser]) -> None:
    p = isub.add_parser(
        "download",
        help="download every item's output (parse results, classifications), resumable",
        description="Download the output of a job's items: parse results (markdown, text or "
        "JSON) or classify results, many requests in flight, written in item order.  "
        "--format files writes one file per item under a directory (names made safe) and an "
        f"index ({INDEX_NAME}); --format jsonl writes one JSON object per item to one file.  "
        "Every file is written atomically; --resume continues an interrupted download.",
        parents=common,
        formatter_class=HelpFormatter,
        epilog=f"""examples:
  aiobatch items download --job-id bjb-123 -o results/
  aiobatch items download --job-id bjb-123 --result text -o results/ --resume
  aiobatch items download --job-id bjb-123 --format jsonl -o results.jsonl
  aiobatch items download --job-id bjb-456 -o classes/        # a classify job

Each line of {INDEX_NAME}: item_id, item_name, file, status (ok/failed),
error, error_kind, bytes.  Exit code 0 when every item's result was written,
1 when some were not (the index says which and why), 2 on usage errors.""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    p.add_argument(
        "--result",
        choices=["markdown", "text", "json", "classification"],
        help="which output (default: markdown for parse jobs, classification for classify)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="DIR|FILE", help="directory (files) or file"
    )
    add_format_option(
        p, DOWNLOADS, to="file", default="files", help="one file per item, or one JSON Lines file"
    )
    add_status_option(
        p,
        [*ITEM_STATUSES, "all"],
        default="completed",
        help="items with this status (default: completed)",
    )
    p.add_argument(
        "--concurrency",
        type=concurrency_int,
        default=8,
        metavar="N",
        help="result requests in flight (default: 8)",
    )
    p.add_argument(
        "--page-size",
        type=page_size_int,
        default=500,
        metavar="N",
        help="items per listing request (default: 500)",
    )
    p.add_argument(
        "--filter-mode",
        choices=["auto", "server", "client"],
        default="auto",
        help="where --status is applied (see `items list --help`)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an interrupted download")
    g.add_argument("--force", action="store_true", help="start over / write into a non-empty DIR")
    add_only_failed(g)
    p.set_defaults(handler=cmd_download)


def add_only_failed(group: Any) -> None:
    group.add_argument(
        "--only-failed",
        action="store_true",
        help="fetch again only the items a finished download marks failed (or missing), "
        "and put their new lines in its index",
    )

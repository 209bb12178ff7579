"""``aiobatch items export``: items to a file as they stream, resumable.

Resume design
-------------
Beside the output lives a small state file (``<output>.aiobatch-state.json``)
holding the export's identity (job id, status filter, format, organization,
project), a ``Checkpoint`` (the library's record of what is done: its offset
is the resume point of the scanned listing, and with client-side filtering it
counts every item, not just the matching ones, so it also holds the filter
mode the scan ran with), the number of rows written and the file's length in
bytes.

JSON Lines and CSV: each page is written as whole records and flushed, *then*
acked on the checkpoint, *then* the state is replaced atomically (write a
temporary file, ``os.replace``).  A kill at any instant leaves the checkpoint
at or behind the data: ``--resume`` truncates the file to the recorded length
(dropping a half-written line or a page written after the last checkpoint) and
scans on with ``checkpoint=``, so no item is duplicated or skipped.

Parquet cannot be appended to once its footer is written, so the file is
written as ``<output>.partial`` and moved over ``<output>`` when the writer
closes: on success, error or Ctrl-C.  ``<output>`` therefore always is a valid
Parquet file, and the checkpoint is saved right after the move.  ``--resume``
copies the checkpointed rows into a new file and continues.  After a hard kill
(SIGKILL, power loss) the rows fetched since the last clean stop are fetched
again; nothing is lost or duplicated.

The state file is removed once the export completes.  Only a failure that a
retry can get past (the network, 5xx, exhausted 429s, drift, Ctrl-C) leaves it:
a permanent one (401, 403, 404, 422) removes the file a new export started and
its state, since ``--resume`` would fail the same way.  A resumed export keeps
its checkpoint whatever happens (the key or base URL may be what was wrong).

An existing output file is never replaced without ``--force``.  An output that
is not a regular file (``/dev/null``, a FIFO, ``/dev/stdout``) is streamed to
without a state file: it cannot be truncated, so it cannot be resumed.

A full disk stops the export with an error naming the file that could not be
written: a page cut short is removed from the output (whole lines only) and a
state file that could not be replaced keeps its last checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from .._paging import Page, ScanProgress
from ..checkpoint import Checkpoint
from ..models import BatchItem
from ._context import (
    ITEM_STATUSES,
    CliError,
    Context,
    HelpFormatter,
    UsageError,
    add_status_option,
    identifier,
)
from ._durable import check_same, holds_no_data
from ._failures import is_permanent
from ._formats import FORMATS, ITEM_CSV_FIELDS, ITEMS, Options, add_format_option, infer_format
from ._items import CSV_RAW_HELP, scan_items
from ._state import VERSION, load_fields, save_fields
from ._writers import Csv, Writer

__all__ = ["STATE_SUFFIX", "ExportState", "cmd_export", "register"]

STATE_SUFFIX = ".aiobatch-state.json"

_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Fields(msgspec.Struct, kw_only=True):
    """What ``ExportState.load`` accepts: the file as ``save`` writes it."""

    job_id: str
    status: str | None
    format: Literal["jsonl", "csv", "parquet"]
    organization_id: str | None
    project_id: str | None
    rows: _Count
    bytes: _Count
    version: int
    csv_raw: bool = False  # absent from state files of earlier releases
    check: dict[str, str] | None = None  # (the same)


class _StateFile(_Fields, kw_only=True, forbid_unknown_fields=True):
    checkpoint: dict[str, Any]


class _StateFileV1(_Fields, kw_only=True):
    filter_mode: Literal["", "none", "server", "client"]
    next_offset: _Count


@dataclass
class ExportState:
    job_id: str
    status: str | None
    format: str
    organization_id: str | None = None
    project_id: str | None = None
    csv_raw: bool = False  #: CSV cells written without the formula guard
    #: What is done: each page's items are acked once they are flushed.
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    rows: int = 0
    bytes: int = 0
    version: int = VERSION

    IDENTITY = ("job_id", "status", "format", "organization_id", "project_id", "csv_raw")

    def save(self, path: Path) -> None:
        """Replace the state file atomically: readers see the old or the new one."""
        save_fields(self, path)

    @classmethod
    def load(cls, path: Path) -> ExportState:
        """The state in ``path``, checked field by field (it may have been edited)."""
        return cls(**load_fields(path, {1: _StateFileV1, VERSION: _StateFile}))

    def check_same_export(self, want: ExportState, path: Path) -> None:
        check_same(self, want, self.IDENTITY, path, what="export")


# --- the command ------------------------------------------------------------


def _regular(path: Path) -> bool | None:
    """Whether ``path`` is a regular file; None when nothing is there (yet)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:  # missing (or unreachable: opening it will say why)
        return None


#: Names of a process's own streams: ``-o /dev/stdout > file`` is a regular
#: file behind the name, but no state file can live beside it, and the shell
#: decided how it is opened (``>>`` must not be truncated).
_STREAM_PREFIXES = ("/dev/", "/proc/self/fd/")


def _is_stream(path: Path) -> bool:
    """A FIFO, a device or a standard stream: streamed to, never resumed."""
    return _regular(path) is False or str(path).startswith(_STREAM_PREFIXES)


def _prepare(
    ctx: Context, out: Path, state_path: Path, want: ExportState, stateless: bool
) -> ExportState | None:
    """The checkpoint to resume from, or None to start afresh (after the checks)."""
    a = ctx.args
    if stateless:
        if a.resume:
            raise UsageError(f"cannot resume: {out} is not a regular file")
        return None
    if a.resume:
        if state_path.exists():
            state = ExportState.load(state_path)
            state.check_same_export(want, state_path)
            forced, recorded = a.filter_mode, state.checkpoint.filter_mode
            if recorded is not None and forced not in ("auto", recorded):
                raise UsageError(
                    f"cannot resume with --filter-mode {forced}: the export started "
                    f"with {recorded} and its offsets count that listing"
                )
            return state
        header = Csv(ITEM_CSV_FIELDS).header() if want.format == "csv" else b""
        if out.exists() and not holds_no_data(out, header):
            raise UsageError(
                f"cannot resume: {out} has no state file ({state_path.name}); the export "
                "finished, or was not written by aiobatch.  Run with --force instead of "
                "--resume to overwrite it"
            )
        ctx.note(f"nothing to resume at {out}: starting a new export")
        return None
    if a.force:
        return None
    if state_path.exists():
        raise UsageError(
            f"{out} is an interrupted export: add --resume to continue it, or --force to start over"
        )
    if out.exists():
        raise UsageError(f"{out} already exists: add --force to overwrite it")
    return None


async def cmd_export(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    if a.output == "-":
        raise UsageError("export writes a file; `aiobatch items list` writes to stdout")
    out = Path(a.output)
    fmt = a.format or infer_format(a.output)
    form = FORMATS[fmt]
    form.check_available()
    state_path = out.with_name(out.name + STATE_SUFFIX)
    csv_raw = bool(a.csv_raw) and fmt == "csv"
    want = ExportState(
        a.job_id, a.status, fmt, ctx.opt("organization_id"), ctx.opt("project_id"), csv_raw
    )
    stateless = _is_stream(out)  # a device, a FIFO: no truncating, no resuming
    if stateless and not form.appendable:
        raise UsageError(f"{form.title} export needs a regular file, and {out} is not one")
    client = ctx.client()  # a missing key is reported before any file is touched
    resumed = _prepare(ctx, out, state_path, want, stateless)
    state = resumed or want
    options = Options(csv_raw=csv_raw, compression=a.compression, stream=stateless)
    writer = form.to_file(ITEMS, out, resumed, options)
    state.rows, state.bytes = writer.rows, writer.bytes
    kept = state.rows
    if not stateless:
        _first_save(writer, state, out, state_path, fresh=resumed is None)
    if resumed is not None:
        ctx.note(
            f"resuming {out}: {state.rows:,} items kept, continuing at {state.checkpoint.offset:,}"
        )

    # A stream is never resumed: nothing to record.
    checkpoint = None if stateless else state.checkpoint

    def on_page(page: Page[BatchItem], progress: ScanProgress) -> None:
        writer.write(page.items)
        state.rows, state.bytes = writer.rows, writer.bytes
        if checkpoint is None:
            return
        # Only once the page is flushed does the checkpoint move past it.
        checkpoint.ack(page)
        if form.appendable:
            state.save(state_path)

    started = time.monotonic()
    try:
        async with client:
            await scan_items(
                ctx,
                client,
                a.job_id,
                status=a.status,
                on_page=on_page,
                checkpoint=checkpoint,
                description=f"exporting {a.status or 'all'} items",
            )
        writer.close()
    except BaseException as exc:
        if not stateless:
            _stopped(ctx, exc, writer, state, out, state_path, resumed=resumed is not None)
        else:
            with contextlib.suppress(Exception):  # the failure to report is ``exc``
                writer.close()
        raise
    state.rows, state.bytes = writer.rows, writer.bytes
    if not stateless:
        state_path.unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    new = state.rows - kept
    extra = f", {new:,} in this run" if resumed is not None else ""
    ctx.note(f"exported {state.rows:,} items to {out} ({fmt}{extra}) in {elapsed:.1f}s")
    return 0


def _first_save(
    writer: Writer[Any], state: ExportState, out: Path, state_path: Path, *, fresh: bool
) -> None:
    """Record the state before the first page; if even that cannot be written
    (a full disk), a new export leaves no file behind."""
    try:
        state.save(state_path)
    except CliError:
        with contextlib.suppress(Exception):  # the failure to report is the save's
            writer.close()
        if fresh:
            out.unlink(missing_ok=True)
        raise


def _stopped(
    ctx: Context,
    exc: BaseException,
    writer: Writer[Any],
    state: ExportState,
    out: Path,
    state_path: Path,
    *,
    resumed: bool,
) -> None:
    """Leave the output as the failure ``exc`` requires: resumable when a retry
    may get past it, otherwise as if this run had not started a new export."""
    with contextlib.suppress(Exception):  # the failure to report is ``exc``
        writer.close()
    state.rows, state.bytes = writer.rows, writer.bytes
    permanent = is_permanent(exc)
    if permanent and not resumed:
        # --resume would fail the same way: no half export, no state, no hint.
        for path in (state_path, out, out.with_name(out.name + ".partial")):
            path.unlink(missing_ok=True)
        return
    with contextlib.suppress(CliError):  # a full disk: the last page's checkpoint stands
        state.save(state_path)
    then = "once the error below is fixed, " if permanent else ""
    ctx.note(
        f"{out} holds {state.rows:,} complete items; {then}run the same command with "
        "--resume to continue"
    )


def register(
    isub: Any, common: list[argparse.ArgumentParser], scan: argparse.ArgumentParser
) -> None:
    p = isub.add_parser(
        "export",
        help="write items to a file as they stream (resumable)",
        description="Write a job's items (optionally of one status) to a file while they "
        "stream: JSON Lines, CSV, or Parquet (needs the `parquet` extra).  JSON Lines and "
        "CSV files hold only complete records at every moment.  If the export stops "
        "(network or server error, Ctrl-C, kill), run the same command with --resume: it "
        "continues where it stopped, without duplicating or skipping an item.",
        parents=[*common, scan],
        formatter_class=HelpFormatter,
        epilog=f"""examples:
  aiobatch items export --job-id bjb-123 --status failed -o failed.jsonl
  aiobatch items export --job-id bjb-123 --status failed -o failed.jsonl --resume
  aiobatch items export --job-id bjb-123 --status failed -o failed.jsonl --force
  aiobatch items export --job-id bjb-123 -o items.csv
  aiobatch items export --job-id bjb-123 -o items.parquet

The format follows the file extension (.jsonl/.ndjson, .csv, .parquet) unless
--format is given.  An existing file is never replaced without --force.
Progress is kept in <output>{STATE_SUFFIX}, removed when the export completes,
and removed with the new file when the export fails for good (401, 403, 404,
422: --resume could not help).  CSV cells starting with = + - @ get a leading '
unless --csv-raw.  Parquet files are written beside the output and moved into
place whenever the export stops, so the output is always a valid Parquet file;
after a hard kill, resume refetches the items since the last clean stop.""",
    )
    p.add_argument("--job-id", required=True, type=identifier, metavar="ID")
    add_status_option(p, ITEM_STATUSES, help="only items with this status")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    add_format_option(p, ITEMS, to="file", help="(default: from the extension)")
    p.add_argument(
        "--compression",
        choices=["zstd", "snappy", "gzip", "none"],
        default="zstd",
        help="compression of a Parquet export (default: zstd)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an interrupted export")
    g.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing file (or an interrupted export) instead of refusing",
    )
    p.add_argument("--csv-raw", action="store_true", help=CSV_RAW_HELP)
    p.set_defaults(handler=cmd_export)

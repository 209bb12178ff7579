"""``aiobatch items export``: items to a file as they stream, resumable.

Resume design
-------------
Beside the output lives a small state file (``<output>.aiobatch-state.json``)
holding the export's identity (job id, status filter, format, organization,
project), the filter mode the scan ran with, and a checkpoint: ``next_offset``
(the resume point of the scanned listing: with client-side filtering it counts
every item, not just the matching ones, so the filter mode is recorded and
reused), the number of rows written and the file's length in bytes.

JSON Lines and CSV: each page is written as whole records and flushed, *then*
the state is replaced atomically (write a temporary file, ``os.replace``).  A
kill at any instant leaves the checkpoint at or behind the data: ``--resume``
truncates the file to the recorded length (dropping a half-written line or a
page written after the last checkpoint) and scans on from ``next_offset``, so
no item is duplicated or skipped.

Parquet cannot be appended to once its footer is written, so the file is
written as ``<output>.partial`` and moved over ``<output>`` when the writer
closes: on success, error or Ctrl-C.  ``<output>`` therefore always is a valid
Parquet file, and the checkpoint is saved right after the move.  ``--resume``
copies the checkpointed rows into a new file and continues.  After a hard kill
(SIGKILL, power loss) the rows fetched since the last clean stop are fetched
again; nothing is lost or duplicated.

The state file is removed once the export completes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import msgspec

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

from .._paging import FilterMode, Page, ScanProgress
from ..arrow import item_schema, record_batch
from ..models import BatchItem
from ._context import ITEM_STATUSES, CliError, Context, HelpFormatter, UsageError
from ._items import scan_items
from ._output import csv_header, csv_rows

__all__ = ["STATE_SUFFIX", "ExportState", "cmd_export", "infer_format", "register"]

STATE_SUFFIX = ".aiobatch-state.json"
_VERSION = 1
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_PARQUET_ROW_GROUP = 65_536


def infer_format(path: str) -> str:
    return _EXTENSIONS.get(Path(path).suffix.lower(), "jsonl")


@dataclass
class ExportState:
    job_id: str
    status: str | None
    format: str
    organization_id: str | None = None
    project_id: str | None = None
    filter_mode: str = ""  #: "", "none", "server" or "client"
    next_offset: int = 0
    rows: int = 0
    bytes: int = 0
    version: int = _VERSION

    IDENTITY = ("job_id", "status", "format", "organization_id", "project_id")

    def save(self, path: Path) -> None:
        """Replace the state file atomically: readers see the old or the new one."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(msgspec.json.encode(asdict(self)))
            f.flush()
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ExportState:
        try:
            raw = msgspec.json.decode(path.read_bytes())
            known = {f.name for f in fields(cls)}
            state = cls(**{k: v for k, v in raw.items() if k in known})
        except (OSError, msgspec.DecodeError, TypeError, AttributeError) as exc:
            raise UsageError(f"cannot resume: unreadable state file {path} ({exc})") from None
        if state.version != _VERSION:
            raise UsageError(f"cannot resume: {path} was written by another aiobatch version")
        return state

    def check_same_export(self, want: ExportState, path: Path) -> None:
        for name in self.IDENTITY:
            had, asked = getattr(self, name), getattr(want, name)
            if had != asked:
                raise UsageError(
                    f"cannot resume: the interrupted export has {name}={had!r} but this "
                    f"command asks for {asked!r} (state: {path}); use --force to start over"
                )


# --- writers ----------------------------------------------------------------


class _Writer(Protocol):
    rows: int
    bytes: int
    #: True when every write is durable at once (checkpoint after each page).
    per_page: bool

    def write(self, items: list[BatchItem]) -> None: ...

    def close(self) -> None: ...


class _LineWriter:
    """JSON Lines or CSV: whole records per page, flushed; never a partial line
    unless the process dies inside ``write`` (resume truncates it away)."""

    per_page = True

    def __init__(self, path: Path, fmt: str, state: ExportState | None) -> None:
        self._csv = fmt == "csv"
        self._enc = msgspec.json.Encoder()
        if state is not None and not path.exists():
            raise CliError(f"cannot resume: {path} is missing; use --force to start over")
        self._f = _open_locked(path)
        if state is None:
            self._f.truncate(0)
            header = csv_header().encode() if self._csv else b""
            self._f.write(header)
            self._f.flush()
            self.rows, self.bytes = 0, len(header)
            return
        _truncate_to_checkpoint(self._f, path, state.bytes)
        self.rows, self.bytes = state.rows, state.bytes

    def write(self, items: list[BatchItem]) -> None:
        if not items:
            return
        data = csv_rows(items).encode() if self._csv else self._enc.encode_lines(items)
        self._f.write(data)
        self._f.flush()
        self.rows += len(items)
        self.bytes += len(data)

    def close(self) -> None:
        self._f.close()


def _open_locked(path: Path) -> BinaryIO:
    """Open ``path`` for writing without truncating it, then lock it: two exports
    into one file would interleave their pages and checkpoints."""
    f = open(path, "a+b")  # noqa: SIM115 (the writer closes it)
    if fcntl is not None:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise UsageError(f"{path} is being written by another aiobatch export") from None
    return f


def _truncate_to_checkpoint(f: BinaryIO, path: Path, length: int) -> None:
    size = f.seek(0, os.SEEK_END)
    ok = size >= length
    if ok and length:
        f.seek(length - 1)
        ok = f.read(1) == b"\n"
    if not ok:
        f.close()
        raise CliError(
            f"cannot resume: {path} does not match its state file (expected at least "
            f"{length} bytes ending a line, found {size}); use --force to start over"
        )
    f.truncate(length)  # drop a half-written line, or a page written after the checkpoint
    f.seek(length)


class _ParquetWriter:
    """Rows go to ``<path>.partial``; ``close`` finishes the file and moves it over
    ``path``, so ``path`` is always a complete Parquet file."""

    per_page = False

    def __init__(self, path: Path, state: ExportState | None, compression: str = "zstd") -> None:
        self._pa: Any = importlib.import_module("pyarrow")
        self._pq: Any = importlib.import_module("pyarrow.parquet")
        pa = self._pa
        self._schema = item_schema()  # the library's typed columns (aiobatch.arrow)
        self._path = path
        self._partial = path.with_name(path.name + ".partial")
        self._buffer: list[BatchItem] = []
        self.rows = self.bytes = 0
        old = None
        if state is not None and state.rows:
            try:
                old = self._pq.read_table(path, schema=self._schema)
            except (OSError, pa.ArrowException) as exc:
                raise CliError(
                    f"cannot resume: {path} is not a readable Parquet file ({exc}); "
                    "use --force to start over"
                ) from None
            if old.num_rows < state.rows:
                raise CliError(
                    f"cannot resume: {path} has {old.num_rows} rows, its state file "
                    f"{state.rows}; use --force to start over"
                )
        self._lock = _open_locked(self._partial)
        self._lock.truncate(0)
        self._writer = self._pq.ParquetWriter(
            self._partial, self._schema, compression=None if compression == "none" else compression
        )
        if old is not None and state is not None:
            self._writer.write_table(old.slice(0, state.rows))
            self.rows = state.rows

    def write(self, items: list[BatchItem]) -> None:
        self._buffer.extend(items)
        self.rows += len(items)
        if len(self._buffer) >= _PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._writer.write_batch(record_batch(self._buffer, schema=self._schema))
        self._buffer.clear()

    def close(self) -> None:
        try:
            try:
                self._flush()
            finally:
                self._writer.close()
            os.replace(self._partial, self._path)
            self.bytes = self._path.stat().st_size
        finally:
            self._lock.close()


# --- the command ------------------------------------------------------------


def _prepare(ctx: Context, out: Path, state_path: Path, want: ExportState) -> ExportState | None:
    """The checkpoint to resume from, or None to start afresh (after the checks)."""
    a = ctx.args
    if a.resume:
        if state_path.exists():
            state = ExportState.load(state_path)
            state.check_same_export(want, state_path)
            forced = a.filter_mode
            recorded = state.filter_mode
            if forced not in ("auto", recorded) and recorded in ("server", "client"):
                raise UsageError(
                    f"cannot resume with --filter-mode {forced}: the export started "
                    f"with {recorded} and its offsets count that listing"
                )
            return state
        if out.exists():
            raise UsageError(
                f"cannot resume: {out} has no state file ({state_path.name}); the export "
                "finished, or was not written by aiobatch.  Run without --resume to overwrite"
            )
        ctx.note(f"nothing to resume at {out}: starting a new export")
        return None
    if state_path.exists() and not a.force:
        raise UsageError(
            f"{out} is an interrupted export: add --resume to continue it, or --force to start over"
        )
    return None


async def cmd_export(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"job {a.job_id}"
    if a.output == "-":
        raise UsageError("export writes a file; `aiobatch items list` writes to stdout")
    out = Path(a.output)
    fmt = a.format or infer_format(a.output)
    if fmt == "parquet":
        try:
            importlib.import_module("pyarrow.parquet")
        except ImportError:
            raise UsageError(
                "Parquet export needs pyarrow: pip install 'aiobatch[parquet]'"
            ) from None
    state_path = out.with_name(out.name + STATE_SUFFIX)
    want = ExportState(a.job_id, a.status, fmt, ctx.opt("organization_id"), ctx.opt("project_id"))
    client = ctx.client()  # a missing key is reported before any file is touched
    resumed = _prepare(ctx, out, state_path, want)
    state = resumed or want
    writer: _Writer = (
        _ParquetWriter(out, resumed, a.compression)
        if fmt == "parquet"
        else _LineWriter(out, fmt, resumed)
    )
    state.rows, state.bytes = writer.rows, writer.bytes
    kept = state.rows
    state.save(state_path)
    if resumed is not None:
        ctx.note(f"resuming {out}: {state.rows:,} items kept, continuing at {state.next_offset:,}")

    def on_page(page: Page[BatchItem], progress: ScanProgress) -> None:
        writer.write(page.items)
        # Only once the page is flushed does the checkpoint move past it.
        state.next_offset = page.next_offset
        state.filter_mode = progress.filter_mode
        state.rows, state.bytes = writer.rows, writer.bytes
        if writer.per_page:
            state.save(state_path)

    mode: FilterMode | None = None
    if state.filter_mode in ("server", "client"):
        mode = "server" if state.filter_mode == "server" else "client"
    started = time.monotonic()
    done = False
    try:
        async with client:
            await scan_items(
                ctx,
                client,
                a.job_id,
                status=a.status,
                on_page=on_page,
                start_offset=state.next_offset,
                filter_mode=mode,
                description=f"exporting {a.status or 'all'} items",
            )
        done = True
    finally:
        writer.close()
        state.rows, state.bytes = writer.rows, writer.bytes
        if done:
            with contextlib.suppress(FileNotFoundError):
                state_path.unlink()
        else:
            state.save(state_path)
            ctx.note(
                f"{out} holds {state.rows:,} complete items; run the same command with "
                "--resume to continue"
            )
    elapsed = time.monotonic() - started
    new = state.rows - kept
    extra = f", {new:,} in this run" if resumed is not None else ""
    ctx.note(f"exported {state.rows:,} items to {out} ({fmt}{extra}) in {elapsed:.1f}s")
    return 0


def register(
    isub: Any, common: list[argparse.ArgumentParser], scan: argparse.ArgumentParser
) -> None:
    p = isub.add_parser(
        "export",
        help="write items to a file as they stream (resumable)",
        description="Write a job's items (optionally of one status) to a file while they "
        "stream: JSON Lines, CSV, or Parquet (needs the `parquet` extra).  JSON Lines and "
        "CSV files hold only complete records at every moment.  If the export stops "
        "(error, Ctrl-C, kill), run the same command with --resume: it continues where "
        "it stopped, without duplicating or skipping an item.",
        parents=[*common, scan],
        formatter_class=HelpFormatter,
        epilog=f"""examples:
  aiobatch items export --job-id bjb-123 --status failed -o failed.jsonl
  aiobatch items export --job-id bjb-123 --status failed -o failed.jsonl --resume
  aiobatch items export --job-id bjb-123 -o items.csv
  aiobatch items export --job-id bjb-123 -o items.parquet

The format follows the file extension (.jsonl/.ndjson, .csv, .parquet) unless
--format is given.  Progress is kept in <output>{STATE_SUFFIX}, removed when the
export completes.  Parquet files are written beside the output and moved into
place whenever the export stops, so the output is always a valid Parquet file;
after a hard kill, resume refetches the items since the last clean stop.""",
    )
    p.add_argument("--job-id", required=True, metavar="ID")
    p.add_argument("--status", choices=ITEM_STATUSES, help="only items with this status")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument(
        "--format", choices=["jsonl", "csv", "parquet"], help="(default: from the extension)"
    )
    p.add_argument(
        "--compression",
        choices=["zstd", "snappy", "gzip", "none"],
        default="zstd",
        help="compression of a Parquet export (default: zstd)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an interrupted export")
    g.add_argument(
        "--force", action="store_true", help="start over, discarding an interrupted export"
    )
    p.set_defaults(handler=cmd_export)

"""The output formats, each declared once: the records it writes to stdout, the
records it writes to a file (``items export``), whether such a file can be
resumed by appending, its file extensions, what it needs installed.

Every command names the records it writes (``ITEMS``, ``JOBS``, ...): its
``--format`` choices are the formats that write all of them (``add_format_option``),
and it gets its writer with ``FORMATS[name].to_stdout(records, out, options)``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from .._paging import PageIterator
from ..arrow import ITEM_COLUMNS
from ..models import BatchJob, BatchJobStatus, CancelResponse, ProcessingResults
from ..workflows import RetryPlan
from ._batch_formats import BATCH_CSV_FIELDS, batch_row, draw_batch, draw_batches
from ._context import Context, UsageError
from ._output import print_table, terminal_safe
from ._result_files import FilesWriter, JsonlResultsWriter
from ._summary import DemoRun, Summary
from ._writers import (
    Checkpoint,
    Csv,
    Documents,
    Drawn,
    Each,
    ItemTable,
    JsonArray,
    JsonLines,
    ParquetFile,
    ToFile,
    ToStream,
    Writer,
)

__all__ = [
    "BATCH",
    "BATCHES",
    "BATCH_PAGE",
    "CANCEL",
    "DEMO",
    "DIRECTORY_FILES",
    "DOWNLOADS",
    "FILE_PAGE",
    "FORMATS",
    "ITEMS",
    "ITEM_PAGE",
    "JOBS",
    "JOB_PAGE",
    "JOB_STATUS",
    "RESULTS",
    "RETRY",
    "SUMMARY",
    "Format",
    "Options",
    "Records",
    "Target",
    "add_format_option",
    "infer_format",
    "names",
    "number",
    "stdout_writer",
    "write_stdout",
]

#: What a command writes.  A page is one API response (``--limit``/``--offset``).
Records = Literal[
    "items",
    "item page",
    "jobs",
    "job page",
    "job status",
    "cancel",
    "results",
    "summary",
    "demo",
    "downloads",
    "retry",
    "batches",
    "batch page",
    "batch",
    "directory files",
    "file page",
]
ITEMS: Records = "items"  #: BatchItem, page after page (items list, items export)
ITEM_PAGE: Records = "item page"  #: BatchItemListResponse
JOBS: Records = "jobs"  #: BatchJob (jobs list)
JOB_PAGE: Records = "job page"  #: BatchJobList
JOB_STATUS: Records = "job status"  #: BatchJobStatus (jobs status, jobs watch)
CANCEL: Records = "cancel"  #: CancelResponse (jobs cancel)
RESULTS: Records = "results"  #: ProcessingResults (items results)
SUMMARY: Records = "summary"  #: Summary (items summary)
DEMO: Records = "demo"  #: DemoRun (demo)
DOWNLOADS: Records = "downloads"  #: ItemResult (items download)
RETRY: Records = "retry"  #: RetryPlan (jobs retry-failed)
BATCHES: Records = "batches"  #: v2 Batch, page after page (batches list)
BATCH_PAGE: Records = "batch page"  #: v2 BatchList (batches list --page-token)
BATCH: Records = "batch"  #: one v2 Batch (batches get / cancel / create)
DIRECTORY_FILES: Records = "directory files"  #: DirectoryFile (directories files)
FILE_PAGE: Records = "file page"  #: DirectoryFileList (directories files --page-token)

#: Columns of CSV output, in wire-field order (items: the Arrow/Parquet columns).
ITEM_CSV_FIELDS = ITEM_COLUMNS
JOB_CSV_FIELDS = (
    "id",
    "job_type",
    "status",
    "total_items",
    "processed_items",
    "failed_items",
    "skipped_items",
    "created_at",
    "started_at",
    "completed_at",
    "directory_id",
    "project_id",
    "error_message",
)


@dataclass(frozen=True)
class Options:
    """What the command line says about how to write."""

    csv_raw: bool = False  #: CSV cells as sent, without the formula guard
    top: int = 5  #: rows of a summary's top lists
    compression: str = "zstd"  #: of a Parquet file
    #: The output is a FIFO, a device or /dev/stdout: streamed, not resumable.
    stream: bool = False


StreamWriter = Callable[[IO[str], Options], Writer[Any]]
FileWriter = Callable[[Path, Checkpoint | None, Options], Writer[Any]]


@dataclass(frozen=True)
class Format:
    name: str
    title: str  #: as named in messages ("Parquet export needs ...")
    stdout: Mapping[Records, StreamWriter]  #: what it writes to stdout, and how
    file: Mapping[Records, FileWriter] = field(default_factory=dict)  #: ... to a file
    #: A file grows by whole records, flushed page by page: checkpointed after
    #: each page, resumed by appending, writable to a FIFO or a device.  Otherwise
    #: the file is written beside the output and moved over it on close.
    appendable: bool = False
    extensions: tuple[str, ...] = ()  #: inferred from an export's file name
    requires: tuple[str, str] | None = None  #: (module, how to install it)

    def check_available(self) -> None:
        if self.requires is None:
            return
        module, install = self.requires
        try:
            importlib.import_module(module)
        except ImportError:
            raise UsageError(f"{self.title} export needs {install}") from None

    def to_stdout(self, records: Records, out: IO[str], options: Options) -> Writer[Any]:
        return self.stdout[records](out, options)

    def to_file(
        self, records: Records, path: Path, resume: Checkpoint | None, options: Options
    ) -> Writer[Any]:
        return self.file[records](path, resume, options)


# --- drawings of records ----------------------------------------------------------


def number(value: int | None) -> str:
    """A count as shown in a table (``-`` when the server did not say)."""
    return "-" if value is None else f"{value:,}"


def _ts(job: BatchJob, name: str) -> str:
    value = getattr(job, name)
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def draw_jobs(out: IO[str], jobs: Sequence[BatchJob]) -> None:
    rows = [
        [
            j.id,
            str(j.job_type),
            str(j.status),
            number(j.total_items),
            number(j.processed_items),
            number(j.failed_items),
            number(j.skipped_items),
            _ts(j, "created_at"),
        ]
        for j in jobs
    ]
    cols = ["job id", "type", "status", "items", "processed", "failed", "skipped", "created"]
    print_table(out, cols, rows, right=(3, 4, 5, 6))


def _status_rows(st: BatchJobStatus) -> list[list[str]]:
    j = st.job
    rows = [
        ["job", j.id],
        ["type", str(j.job_type)],
        ["status", str(j.status)],
        ["progress", f"{st.progress_percentage:.1f}%"],
        ["items", number(j.total_items)],
        ["processed", number(j.processed_items)],
        ["failed", number(j.failed_items)],
        ["skipped", number(j.skipped_items)],
        ["created", _ts(j, "created_at")],
        ["started", _ts(j, "started_at")],
        ["completed", _ts(j, "completed_at")],
    ]
    if j.directory_id:
        rows.append(["directory", j.directory_id])
    if j.error_message:
        rows.append(["error", j.error_message])
    return rows


def draw_status(out: IO[str], statuses: Sequence[BatchJobStatus]) -> None:
    for st in statuses:
        print_table(out, ["field", "value"], _status_rows(st))


def draw_cancel(out: IO[str], responses: Sequence[CancelResponse]) -> None:
    for res in responses:
        line = f"job {res.job_id}: {res.status} ({res.message}; {res.processed_items:,} items"
        out.write(terminal_safe(line) + " processed)\n")


def draw_results(out: IO[str], results: Sequence[ProcessingResults]) -> None:
    for res in results:
        rows = [
            [r.result_id, str(r.job_type), r.processed_at.isoformat(), r.output_s3_path]
            for r in res.processing_results
        ]
        print_table(
            out,
            ["result id", "type", "processed at", "output"],
            rows,
            title=f"Processing results of {res.item_name} ({res.item_id})",
        )


def retry_doc(plan: RetryPlan) -> dict[str, Any]:
    """``jobs retry-failed --format json``: the new jobs and what is left."""
    return {
        "source_job_id": plan.source_job_id,
        "statuses": list(plan.statuses),
        "dry_run": plan.dry_run,
        "found": plan.found,
        "chunk_size": plan.chunk_size,
        # found: an uncertain create settled by finding the job it had made
        "created": [{"job_id": c.job_id, "items": c.size, "found": c.found} for c in plan.created],
        "planned": [c.size for c in plan.pending] if plan.dry_run else [],
        "uncertain": [
            {"chunk": c.index, "items": c.size, "candidates": list(c.candidates)}
            for c in plan.uncertain
        ],
        "not_submitted": len(plan.not_submitted) if not plan.dry_run else 0,
        "config_source": plan.config_source,
    }


def draw_retry(out: IO[str], plans: Sequence[RetryPlan]) -> None:
    for plan in plans:
        head = (
            f"{plan.found:,} item(s) of {plan.source_job_id} with status {'/'.join(plan.statuses)}"
        )
        if plan.dry_run:
            sizes = ", ".join(f"{c.size:,}" for c in plan.pending) or "none"
            line = f"{head}: would create {len(plan.pending)} job(s) of {sizes} item(s)"
            if plan.earlier:
                line += f" ({len(plan.earlier)} created before)"
            out.write(terminal_safe(line) + "\n")
            continue
        rows = [[c.job_id or "-", number(c.size)] for c in plan.created]
        print_table(out, ["new job", "items"], rows, right=(1,), title=terminal_safe(head))


# --- the registry -----------------------------------------------------------------


def _items_of(page: Any) -> Sequence[Any]:
    return page.items  # type: ignore[no-any-return]


def _results_of(res: ProcessingResults) -> Sequence[Any]:
    return res.processing_results


def _page_of(inner: StreamWriter) -> StreamWriter:
    """A page (one API response) as the records it holds."""
    return lambda out, o: Each(inner(out, o), _items_of)


def _jsonl(out: IO[str], o: Options) -> Writer[Any]:
    return ToStream(out, JsonLines())


def _csv(fields: Sequence[str]) -> StreamWriter:
    return lambda out, o: ToStream(out, Csv(fields, raw=o.csv_raw))


def _json_array(*, pretty: bool) -> StreamWriter:
    return lambda out, o: ToStream(out, JsonArray(pretty=pretty))


def _document(out: IO[str], o: Options) -> Writer[Any]:
    return Documents(out)


def _drawn(draw: Callable[[IO[str], Sequence[Any]], None]) -> StreamWriter:
    return lambda out, o: Drawn(out, draw)


def _summary_json(out: IO[str], o: Options) -> Writer[Any]:
    return Documents(out, lambda s: s.to_json(o.top))


def _summary_tables(out: IO[str], o: Options) -> Writer[Any]:
    def draw(out: IO[str], reports: Sequence[Summary | DemoRun]) -> None:
        for report in reports:
            report.print_tables(out, o.top)

    return Drawn(out, draw)


def _item_table(out: IO[str], o: Options) -> Writer[Any]:
    return ItemTable(out)


def _batch_csv(out: IO[str], o: Options) -> Writer[Any]:
    return Each(ToStream(out, Csv(BATCH_CSV_FIELDS, raw=o.csv_raw)), lambda b: [batch_row(b)])


def _file_csv(out: IO[str], o: Options) -> Writer[Any]:
    from ._directories import FILE_CSV_FIELDS

    return ToStream(out, Csv(FILE_CSV_FIELDS, raw=o.csv_raw))


def _draw_files(out: IO[str], files: Sequence[Any]) -> None:
    from ._directories import draw_files  # (it imports this module)

    draw_files(out, files)


_FORMATS = (
    Format(
        "jsonl",
        "JSON Lines",
        stdout={
            ITEMS: _jsonl,
            ITEM_PAGE: _page_of(_jsonl),
            JOBS: _jsonl,
            JOB_PAGE: _page_of(_jsonl),
            RESULTS: lambda out, o: Each(_jsonl(out, o), _results_of),
            BATCHES: _jsonl,
            BATCH_PAGE: _page_of(_jsonl),
            DIRECTORY_FILES: _jsonl,
            FILE_PAGE: _page_of(_jsonl),
        },
        file={
            ITEMS: lambda path, resume, o: ToFile(path, JsonLines(), resume, stream=o.stream),
            DOWNLOADS: lambda path, resume, o: JsonlResultsWriter(path, resume),
        },
        appendable=True,
        extensions=(".jsonl", ".ndjson"),
    ),
    Format(
        "json",
        "JSON",
        stdout={
            ITEMS: _json_array(pretty=False),  # streamed, an item per line
            ITEM_PAGE: _document,  # the API response, as sent
            JOBS: _json_array(pretty=True),
            JOB_PAGE: _document,
            JOB_STATUS: _document,
            CANCEL: _document,
            RESULTS: _document,
            SUMMARY: _summary_json,
            DEMO: _summary_json,
            RETRY: lambda out, o: Documents(out, retry_doc),
            BATCHES: _json_array(pretty=True),
            BATCH_PAGE: _document,
            BATCH: _document,
            DIRECTORY_FILES: _json_array(pretty=True),
            FILE_PAGE: _document,
        },
    ),
    Format(
        "csv",
        "CSV",
        stdout={
            ITEMS: _csv(ITEM_CSV_FIELDS),
            ITEM_PAGE: _page_of(_csv(ITEM_CSV_FIELDS)),
            JOBS: _csv(JOB_CSV_FIELDS),
            JOB_PAGE: _page_of(_csv(JOB_CSV_FIELDS)),
            BATCHES: _batch_csv,
            BATCH_PAGE: _page_of(_batch_csv),
            DIRECTORY_FILES: _file_csv,
            FILE_PAGE: _page_of(_file_csv),
        },
        file={
            ITEMS: lambda path, resume, o: ToFile(
                path, Csv(ITEM_CSV_FIELDS, raw=o.csv_raw), resume, stream=o.stream
            )
        },
        appendable=True,
        extensions=(".csv",),
    ),
    Format(
        "table",
        "table",
        stdout={
            ITEMS: _item_table,  # streamed: aligned on the first page
            ITEM_PAGE: _page_of(_item_table),
            JOBS: _drawn(draw_jobs),
            JOB_PAGE: _page_of(_drawn(draw_jobs)),
            JOB_STATUS: _drawn(draw_status),
            CANCEL: _drawn(draw_cancel),
            RESULTS: _drawn(draw_results),
            SUMMARY: _summary_tables,
            DEMO: _summary_tables,
            RETRY: _drawn(draw_retry),
            BATCHES: _drawn(draw_batches),
            BATCH_PAGE: _page_of(_drawn(draw_batches)),
            BATCH: _drawn(draw_batch),
            DIRECTORY_FILES: _drawn(_draw_files),
            FILE_PAGE: _page_of(_drawn(_draw_files)),
        },
    ),
    Format(
        "parquet",
        "Parquet",
        stdout={},
        file={ITEMS: lambda path, resume, o: ParquetFile(path, resume, o.compression)},
        extensions=(".parquet",),
        requires=("pyarrow.parquet", "pyarrow: pip install 'aiobatch[parquet]'"),
    ),
    Format(
        "files",
        "one file per item",
        stdout={},
        file={DOWNLOADS: lambda path, resume, o: FilesWriter(path, resume)},
    ),
)

FORMATS: Mapping[str, Format] = {f.name: f for f in _FORMATS}

Target = Literal["stdout", "file"]


def names(*records: Records, to: Target = "stdout", default: str | None = None) -> list[str]:
    """The formats that write every one of ``records`` to ``to``, the default first."""
    found = [
        f.name
        for f in _FORMATS
        if all(r in (f.stdout if to == "stdout" else f.file) for r in records)
    ]
    return sorted(found, key=lambda name: name != default)


def infer_format(path: str) -> str:
    """The file format an export's file name asks for (JSON Lines when unknown)."""
    suffix = Path(path).suffix.lower()
    return next((f.name for f in _FORMATS if f.file and suffix in f.extensions), "jsonl")


def add_format_option(
    parser: argparse.ArgumentParser,
    *records: Records,
    to: Target = "stdout",
    default: str | None = None,
    help: str | None = None,
) -> None:
    """``--format``, its choices the formats that write ``records``."""
    parser.add_argument(
        "--format",
        choices=names(*records, to=to, default=default),
        default=default,
        help=help or f"(default: {default})",
    )


def stdout_writer(ctx: Context, records: Records) -> Writer[Any]:
    """The writer of the command's ``--format`` for ``records``, on stdout."""
    options = Options(csv_raw=bool(ctx.opt("csv_raw")), top=int(ctx.opt("top", 5)))
    return FORMATS[ctx.args.format].to_stdout(records, ctx.stdout, options)


def write_stdout(ctx: Context, records: Records, values: Sequence[Any]) -> None:
    """``values`` (a response, a summary) on stdout in the command's ``--format``."""
    writer = stdout_writer(ctx, records)
    writer.write(values)
    writer.close()


async def write_cursor_listing(
    ctx: Context,
    *,
    one_page: Callable[[str], Awaitable[Any]],
    pages: Callable[..., PageIterator[Any]],
    page_records: Records,
    records: Records,
) -> int:
    """A cursor-paged listing command: with ``--page-token``, one page exactly as
    the endpoint answers it (the next token on stderr); without, every page of
    ``pages(max_items=, page_size=)``, written as it comes."""
    a = ctx.args
    if a.page_token is not None:
        page = await one_page(a.page_token)
        write_stdout(ctx, page_records, [page])
        if page.next_page_token:
            ctx.note(f"next page: --page-token {page.next_page_token}")
        return 0
    options: dict[str, Any] = {"max_items": a.max_items}
    if a.page_size is not None:
        options["page_size"] = a.page_size
    writer = stdout_writer(ctx, records)
    async with pages(**options) as listing:
        ctx.scan = listing.progress
        async for p in listing:
            writer.write(p.items)
    writer.close()
    return 0

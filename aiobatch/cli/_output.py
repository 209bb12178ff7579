"""Output for the command line: item formats, tables and progress bars.

Data goes to stdout, everything else to stderr.  rich (the ``cli`` extra) is
imported lazily and only used when installed; without it tables are plain
aligned text and progress is a single self-rewriting line.

Two rules for text that came from the server (or the command line):

* Drawn for a person (tables, summaries, progress, notes, errors): it goes
  through ``terminal_safe`` (control characters shown as ``\\x1b``...) and
  reaches rich only as ``rich.text.Text``, never as markup.
* Written as data (JSON Lines, JSON, CSV): it is written as is, except that
  CSV cells go through ``csv_cell`` (spreadsheet formula injection).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Sequence
from types import ModuleType, TracebackType
from typing import IO, Any, Protocol, Self

import msgspec

from ..arrow import ITEM_COLUMNS
from ..models import BatchItem

__all__ = [
    "CSV_FIELDS",
    "ItemSink",
    "Progress",
    "csv_cell",
    "csv_header",
    "csv_rows",
    "is_tty",
    "item_sink",
    "load_rich",
    "print_table",
    "terminal_safe",
    "to_jsonable",
]

#: Columns of CSV output, in wire-field order (the same as the Arrow/Parquet ones).
CSV_FIELDS = ITEM_COLUMNS

_encoder = msgspec.json.Encoder()


# --- text for people and cells for spreadsheets -------------------------------


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: C0 controls (all of them, newline and tab included), DEL, C1 controls, and
#: the bidirectional overrides / isolates that reorder what a terminal shows.
_UNSAFE = [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SAFE_TABLE = {code: _visible(code) for code in _UNSAFE}


def terminal_safe(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1) and bidi override
    replaced by a visible escape (``\\x1b``, ``\\u202e``): what a terminal shows
    is what the data holds, and the data cannot drive the terminal.  For one
    line of text; callers split multi-line text first."""
    return text.translate(_SAFE_TABLE)


#: First characters a spreadsheet reads as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any, *, raw: bool = False) -> Any:
    """One CSV cell: a string from the server that a spreadsheet would run as a
    formula gets a leading ``'``, unless ``raw``.  Numbers pass unchanged."""
    if not raw and isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def load_rich() -> ModuleType | None:
    """The rich package, or None when the ``cli`` extra is not installed."""
    try:
        import rich
    except ImportError:
        return None
    return rich


def is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False


def to_jsonable(obj: Any) -> Any:
    """A model as plain JSON values (the wire form: None fields omitted)."""
    return msgspec.to_builtins(obj)


def dump_json(obj: Any, *, pretty: bool = True) -> str:
    data = _encoder.encode(obj)
    if pretty:
        data = msgspec.json.format(data, indent=2)
    return data.decode()


# --- items ------------------------------------------------------------------


def csv_header() -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(CSV_FIELDS)
    return buf.getvalue()


def csv_rows(items: Iterable[BatchItem], *, raw: bool = False) -> str:
    """Items as CSV records (``\\n``-terminated; fields with newlines are quoted),
    cells guarded against formula injection unless ``raw`` (see ``csv_cell``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for item in items:
        d = msgspec.to_builtins(item)
        writer.writerow([csv_cell(d.get(name, ""), raw=raw) for name in CSV_FIELDS])
    return buf.getvalue()


class ItemSink(Protocol):
    """Writes items to a text stream, page after page, as one format."""

    def write(self, items: Sequence[BatchItem]) -> None: ...

    def close(self) -> None: ...


class _JsonLines:
    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, items: Sequence[BatchItem]) -> None:
        if items:
            self._out.write(_encoder.encode_lines(items).decode())
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


class _JsonArray:
    """One JSON array, streamed: valid once ``close`` has run."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._first = True
        out.write("[")

    def write(self, items: Sequence[BatchItem]) -> None:
        for item in items:
            self._out.write("\n  " if self._first else ",\n  ")
            self._out.write(_encoder.encode(item).decode())
            self._first = False
        self._out.flush()

    def close(self) -> None:
        self._out.write("]\n" if self._first else "\n]\n")
        self._out.flush()


class _Csv:
    def __init__(self, out: IO[str], *, raw: bool = False) -> None:
        self._out = out
        self._raw = raw
        out.write(csv_header())

    def write(self, items: Sequence[BatchItem]) -> None:
        self._out.write(csv_rows(items, raw=self._raw))
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


def _clip(text: str, width: int) -> str:
    text = " ".join(terminal_safe(text).split())  # one line per item, shown as it is
    return text if len(text) <= width else text[: width - 1] + "…"


class _ItemTable:
    """Aligned columns, streamed: the header once, then one line per item."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._widths: tuple[int, int, int] | None = None

    def write(self, items: Sequence[BatchItem]) -> None:
        if self._widths is None:
            if not items:
                return
            self._widths = (
                min(40, max(7, *(len(i.item_id) for i in items))),
                min(10, max(6, *(len(str(i.status)) for i in items))),
                min(48, max(4, *(len(i.item_name) for i in items))),
            )
            self._line("ITEM ID", "STATUS", "NAME", "DETAIL")
        for i in items:
            self._line(
                i.item_id, str(i.status), i.item_name, i.error_message or i.skip_reason or ""
            )
        self._out.flush()

    def _line(self, item_id: str, status: str, name: str, detail: str) -> None:
        assert self._widths is not None
        w_id, w_status, w_name = self._widths
        cells = (
            _clip(item_id, w_id).ljust(w_id),
            _clip(status, w_status).ljust(w_status),
            _clip(name, w_name).ljust(w_name),
            _clip(detail, 60),
        )
        self._out.write("  ".join(cells).rstrip() + "\n")

    def close(self) -> None:
        if self._widths is None:
            self._out.write("(no items)\n")
        self._out.flush()


def item_sink(fmt: str, out: IO[str], *, csv_raw: bool = False) -> ItemSink:
    if fmt == "jsonl":
        return _JsonLines(out)
    if fmt == "json":
        return _JsonArray(out)
    if fmt == "csv":
        return _Csv(out, raw=csv_raw)
    if fmt == "table":
        return _ItemTable(out)
    raise ValueError(f"unknown format {fmt!r}")


# --- tables -----------------------------------------------------------------


def _console(out: IO[str], **options: Any) -> Any:
    """A rich Console on ``out`` that lets a broken pipe raise ``BrokenPipeError``
    (rich's default exits with status 1): every command then ends the same way
    when the reader goes away."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(file=out, **options)


def print_table(
    out: IO[str],
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    right: Sequence[int] = (),
) -> None:
    """A table for people: rich when installed, aligned plain text otherwise.
    ``right`` lists the indices of right-aligned (numeric) columns.  Cells are
    data: shown through ``terminal_safe``, never read as rich markup."""
    columns = [terminal_safe(c) for c in columns]
    rows = [[terminal_safe(c) for c in row] for row in rows]
    title = terminal_safe(title) if title is not None else None
    rich = load_rich()
    if rich is not None:
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=Text(title) if title is not None else None,
            title_justify="left",
            header_style="bold",
        )
        for k, name in enumerate(columns):
            table.add_column(Text(name), justify="right" if k in right else "left", overflow="fold")
        for row in rows:
            table.add_row(*(Text(c) for c in row))
        console = _console(out, width=None if is_tty(out) else 120, highlight=False)
        console.print(table)
        return
    if title:
        out.write(title + "\n")
    widths = [max([len(c), *(len(r[k]) for r in rows)]) for k, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(widths[k]) if k in right else c.ljust(widths[k]) for k, c in enumerate(cells)
        ]
        return "  ".join(parts).rstrip() + "\n"

    out.write(line(columns))
    out.write(line(["-" * w for w in widths]))
    for row in rows:
        out.write(line(row))
    out.flush()


# --- progress ---------------------------------------------------------------


class Progress:
    """A progress bar on ``stream`` (stderr) when ``enabled``; otherwise silent.

    ``update(completed, total, note)`` may be called as often as wanted; rich
    redraws on its own timer and the plain fallback at most 10 times a second.
    """

    def __init__(
        self, stream: IO[str], description: str, *, enabled: bool, unit: str = "items"
    ) -> None:
        self._stream = stream
        self._description = terminal_safe(description)
        self._unit = unit
        self._enabled = enabled
        self._rich: Any = None
        self._task: Any = None
        self._last_draw = 0.0
        self._started = time.monotonic()
        self._plain_state: tuple[int, int | None, str] = (0, None, "")

    def __enter__(self) -> Self:
        if not self._enabled:
            return self
        if load_rich() is not None:
            from rich.progress import (
                BarColumn,
                SpinnerColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            # Fits 80 columns: label, bar, %, count, rate, elapsed (+ a note).
            # The label and the note hold data (a job id, a status): not markup.
            self._rich = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(bar_width=20),
                TaskProgressColumn(),
                TextColumn("{task.fields[count]}", markup=False),
                TextColumn("{task.fields[rate]}", style="cyan", markup=False),
                TimeElapsedColumn(),
                TextColumn("{task.fields[note]}", markup=False),
                console=_console(self._stream),
                refresh_per_second=10,
            )
            self._rich.start()
            self._task = self._rich.add_task(
                self._description, total=None, count="", rate="", note=""
            )
        return self

    def update(self, completed: int, total: int | None = None, note: str = "") -> None:
        if not self._enabled:
            return
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = f"{completed / elapsed:,.0f} {self._unit}/s"
        note = terminal_safe(note)
        if self._rich is not None:
            count = f"{completed:,}" + (f"/{total:,}" if total is not None else "")
            self._rich.update(
                self._task, completed=completed, total=total, count=count, rate=rate, note=note
            )
            return
        self._plain_state = (completed, total, note)
        now = time.monotonic()
        if now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw_plain(rate)

    def _draw_plain(self, rate: str) -> None:
        completed, total, note = self._plain_state
        if total:
            text = f"{completed:,}/{total:,} {self._unit} ({100 * completed / total:.0f}%)"
        else:
            text = f"{completed:,} {self._unit}"
        self._stream.write(f"\r{self._description}: {text}  {rate}  {note}".rstrip() + " \x1b[K")
        self._stream.flush()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._enabled:
            return
        if self._rich is not None:
            self._rich.stop()
            return
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._draw_plain(f"{self._plain_state[0] / elapsed:,.0f} {self._unit}/s")
        self._stream.write("\n")
        self._stream.flush()

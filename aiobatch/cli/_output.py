"""Output for the command line: safe text, tables and progress bars (the
formats are declared in ``_formats``).

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

import re
import time
from collections.abc import Sequence
from types import ModuleType, TracebackType
from typing import IO, Any, Self

__all__ = [
    "Progress",
    "Redacting",
    "csv_cell",
    "is_tty",
    "load_rich",
    "print_table",
    "redact",
    "terminal_safe",
]


# --- text for people and cells for spreadsheets -------------------------------


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: C0 controls (all of them, newline and tab included), DEL, C1 controls, and
#: the bidirectional marks, overrides and isolates that reorder what a terminal
#: shows (U+200E/U+200F/U+061C flip the direction of the text around them).
_UNSAFE = [
    *range(0x20),
    *range(0x7F, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_SAFE_TABLE = {code: _visible(code) for code in _UNSAFE}


def terminal_safe(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1) and bidi override
    replaced by a visible escape (``\\x1b``, ``\\u202e``): what a terminal shows
    is what the data holds, and the data cannot drive the terminal.  For one
    line of text; callers split multi-line text first."""
    return text.translate(_SAFE_TABLE)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (the API keys of the run) shown as ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class Redacting:
    """A text stream that writes to ``stream`` with every secret shown as
    ``***``: what a command prints (a table, JSON Lines on stdout) never holds
    the API key, whatever text the server echoed.  Writers write whole records
    per call, so no key is split across two writes."""

    def __init__(self, stream: IO[str], secrets: Sequence[str]) -> None:
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:
        self._stream.write(redact(text, self._secrets))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno...
        return getattr(self._stream, name)


#: First characters a spreadsheet reads as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_LINE_START = re.compile(r"(^|\r\n|\r|\n)(?=[=+\-@\t\r])")


def csv_cell(value: Any, *, raw: bool = False) -> Any:
    """One CSV cell: a string from the server that a spreadsheet would run as a
    formula gets a leading ``'``, unless ``raw``.  Every line start inside the
    cell is guarded too: a reader that splits rows on a bare CR would start a
    row there.  Numbers pass unchanged."""
    if raw or not isinstance(value, str) or not value:
        return value
    if value.startswith(_FORMULA_START) or "\r" in value or "\n" in value:
        return _LINE_START.sub(lambda m: m.group(1) + "'", value)
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
    """A table for people: rich on a terminal when installed, aligned plain
    text otherwise.  Plain text never wraps a cell: redirected to a file or a
    pipe, every line holds whole values (a 36-character job id stays one word
    for ``grep``).  ``right`` lists the indices of right-aligned (numeric)
    columns.  Cells are data: shown through ``terminal_safe``, never read as
    rich markup."""
    columns = [terminal_safe(c) for c in columns]
    rows = [[terminal_safe(c) for c in row] for row in rows]
    title = terminal_safe(title) if title is not None else None
    rich = load_rich() if is_tty(out) else None
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
        console = _console(out, highlight=False)
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
        self,
        stream: IO[str],
        description: str,
        *,
        enabled: bool,
        unit: str = "items",
        secrets: Sequence[str] = (),
    ) -> None:
        self._stream = stream
        self._secrets = secrets
        self._description = terminal_safe(redact(description, secrets))
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
        note = terminal_safe(redact(note, self._secrets))
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

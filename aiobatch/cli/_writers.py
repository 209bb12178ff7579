"""Every writer behind the output formats, with one protocol: ``write(records)``
page after page, ``close()`` once, and the counts ``rows`` and ``bytes``.

Data formats are a ``Codec`` (records to bytes) put on a text stream
(``ToStream``: stdout) or appended to a file (``ToFile``: a resumable export);
Parquet has its own file writer.  Tables are drawn for people.  The rules of
``_output`` hold: data is written as sent (CSV cells through ``csv_cell``),
drawings show server text only through ``terminal_safe``.
"""

from __future__ import annotations

import csv
import importlib
import io
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar

import msgspec

from ..arrow import item_schema, record_batch
from ..models import BatchItem
from ._context import CliError
from ._durable import append_whole, open_locked, truncate_to_checkpoint, write_error
from ._output import csv_cell, is_tty, terminal_safe

__all__ = [
    "Checkpoint",
    "Codec",
    "Csv",
    "Documents",
    "Drawn",
    "Each",
    "ItemTable",
    "JsonArray",
    "JsonLines",
    "ParquetFile",
    "ToFile",
    "ToStream",
    "Writer",
]

R = TypeVar("R", contravariant=True)
T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_PARQUET_ROW_GROUP = 65_536


class Writer(Protocol[R]):
    """Records in, page after page, as one format."""

    @property
    def rows(self) -> int:
        """Records written (for a page or a result list: the records inside)."""
        ...

    @property
    def bytes(self) -> int:
        """Bytes of data written (a file's length); 0 for a drawing."""
        ...

    def write(self, records: Sequence[R]) -> None: ...

    def close(self) -> None: ...


class Checkpoint(Protocol):
    """Where a resumed file export stands: rows kept, and the file's length."""

    @property
    def rows(self) -> int: ...

    @property
    def bytes(self) -> int: ...


# --- codecs: records as bytes ---------------------------------------------------


class Codec(Protocol):
    def header(self) -> bytes: ...

    def encode(self, records: Sequence[Any]) -> bytes: ...

    def footer(self) -> bytes: ...


class JsonLines:
    """One record per line, as decoded: strings as sent, the modelled fields
    only (no nulls), timestamps to the microsecond."""

    def header(self) -> bytes:
        return b""

    def encode(self, records: Sequence[Any]) -> bytes:
        return _encoder.encode_lines(records) if records else b""

    def footer(self) -> bytes:
        return b""


class JsonArray:
    """One JSON array, streamed: valid once the footer is written.  A record is
    one line, or indented (``pretty``) as ``dump_json`` indents a whole list."""

    def __init__(self, *, pretty: bool) -> None:
        self._pretty = pretty
        self._first = True

    def header(self) -> bytes:
        return b"["

    def encode(self, records: Sequence[Any]) -> bytes:
        parts: list[bytes] = []
        for record in records:
            data = _encoder.encode(record)
            if self._pretty:  # (no newline inside a JSON string: it is escaped)
                data = msgspec.json.format(data, indent=2).replace(b"\n", b"\n  ")
            parts += (b"\n  " if self._first else b",\n  ", data)
            self._first = False
        return b"".join(parts)

    def footer(self) -> bytes:
        return b"]\n" if self._first else b"\n]\n"


class Csv:
    """CSV records (``\\n``-terminated; fields holding CR or LF are quoted), cells
    guarded against formula injection unless ``raw`` (see ``csv_cell``)."""

    def __init__(self, fields: Sequence[str], *, raw: bool = False) -> None:
        self._fields = fields
        self._raw = raw

    def _rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        # The csv module quotes a cell holding a character of the line
        # terminator only: "\r\n" makes it quote CR and LF alike, and each row's
        # own terminator is then cut back to "\n".
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        for row in rows:
            writer.writerow(row)
            buf.seek(buf.tell() - 2)
            buf.write("\n")
            buf.truncate()
        return buf.getvalue().encode()

    def header(self) -> bytes:
        return self._rows([self._fields])

    def encode(self, records: Sequence[Any]) -> bytes:
        dicts = [msgspec.to_builtins(r) for r in records]
        return self._rows(
            [[csv_cell(d.get(k, ""), raw=self._raw) for k in self._fields] for d in dicts]
        )

    def footer(self) -> bytes:
        return b""


# --- data on a stream (stdout) --------------------------------------------------


class ToStream:
    """A codec's output on a text stream, flushed after every page."""

    def __init__(self, out: IO[str], codec: Codec) -> None:
        self._out = out
        self._codec = codec
        self.rows = self.bytes = 0
        self._put(codec.header())

    def write(self, records: Sequence[Any]) -> None:
        self._put(self._codec.encode(records))
        self.rows += len(records)

    def _put(self, data: bytes) -> None:
        if data:
            self._out.write(data.decode())
            self.bytes += len(data)
        self._out.flush()

    def close(self) -> None:
        self._put(self._codec.footer())


class Documents(Generic[T]):
    """Each record as one indented JSON document (an API response, a summary)."""

    def __init__(self, out: IO[str], to_doc: Callable[[T], Any] = lambda r: r) -> None:
        self._out = out
        self._to_doc = to_doc
        self.rows = self.bytes = 0

    def write(self, records: Sequence[T]) -> None:
        for record in records:
            data = msgspec.json.format(_encoder.encode(self._to_doc(record)), indent=2) + b"\n"
            self._out.write(data.decode())
            self.rows += 1
            self.bytes += len(data)
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


class Each(Generic[T]):
    """The records inside each record (a page's items, an item's processing
    results), written through ``inner``."""

    def __init__(self, inner: Writer[Any], parts: Callable[[T], Sequence[Any]]) -> None:
        self._inner = inner
        self._parts = parts

    @property
    def rows(self) -> int:
        return self._inner.rows

    @property
    def bytes(self) -> int:
        return self._inner.bytes

    def write(self, records: Sequence[T]) -> None:
        for record in records:
            self._inner.write(self._parts(record))

    def close(self) -> None:
        self._inner.close()


# --- drawings for people --------------------------------------------------------


class Drawn(Generic[T]):
    """A drawing of all the records (aligned tables need every row), made by
    ``draw(out, records)`` at ``close``."""

    bytes = 0

    def __init__(self, out: IO[str], draw: Callable[[IO[str], Sequence[T]], None]) -> None:
        self._out = out
        self._draw = draw
        self._records: list[T] = []

    @property
    def rows(self) -> int:
        return len(self._records)

    def write(self, records: Sequence[T]) -> None:
        self._records.extend(records)

    def close(self) -> None:
        self._draw(self._out, self._records)
        self._out.flush()


def _clip(text: str, width: int, clip: bool = True) -> str:
    text = " ".join(terminal_safe(text).split())  # one line per item, shown as it is
    return text if len(text) <= width or not clip else text[: width - 1] + "…"


class ItemTable:
    """Aligned columns, streamed: the header once, then one line per item.  On
    a terminal long cells are clipped to fit; elsewhere (a file, a pipe) no
    cell is cut, so every line holds whole values for scripts."""

    bytes = 0

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._widths: tuple[int, int, int] | None = None
        self._clip = is_tty(out)
        self.rows = 0

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
        self.rows += len(items)
        self._out.flush()

    def _line(self, item_id: str, status: str, name: str, detail: str) -> None:
        assert self._widths is not None
        w_id, w_status, w_name = self._widths
        clip = self._clip
        cells = (
            _clip(item_id, w_id, clip).ljust(w_id),
            _clip(status, w_status, clip).ljust(w_status),
            _clip(name, w_name, clip).ljust(w_name),
            _clip(detail, 60, clip),
        )
        self._out.write("  ".join(cells).rstrip() + "\n")

    def close(self) -> None:
        if self._widths is None:
            self._out.write("(no items)\n")
        self._out.flush()


# --- data in a file (a resumable export) ----------------------------------------


class ToFile:
    """A codec's records appended to a file (JSON Lines, CSV): whole records per
    page, written unbuffered; never a partial line unless the process dies
    inside ``write`` (resuming truncates the file to its checkpoint).  A full
    disk cuts the file back to its last whole record.

    ``stream``: the output is a FIFO, a device or ``/dev/stdout``: written in
    order, never truncated, locked or resumed."""

    def __init__(
        self, path: Path, codec: Codec, resume: Checkpoint | None, *, stream: bool = False
    ) -> None:
        self._path = path
        self._codec = codec
        if stream:
            if resume is not None:
                raise CliError(f"cannot resume: {path} is not a regular file")
            # Not "a+b": a FIFO cannot be read back or seeked.
            self._f: IO[bytes] = open(path, "ab", buffering=0)  # noqa: SIM115
            self.rows, self.bytes = 0, 0
            self._write(codec.header())
            return
        if resume is not None and not path.exists():
            raise CliError(f"cannot resume: {path} is missing; use --force to start over")
        self._f = open_locked(path)
        if resume is None:
            if stat.S_ISREG(os.fstat(self._f.fileno()).st_mode):
                self._f.truncate(0)
            self.rows, self.bytes = 0, 0
            self._write(codec.header())
            return
        truncate_to_checkpoint(self._f, path, resume.bytes)
        self.rows, self.bytes = resume.rows, resume.bytes

    def write(self, records: Sequence[Any]) -> None:
        if not records:
            return
        self._write(self._codec.encode(records))
        self.rows += len(records)

    def _write(self, data: bytes) -> None:
        if data:
            self.bytes = append_whole(self._f.fileno(), data, self.bytes, self._path)

    def close(self) -> None:
        try:
            self._f.close()
        except OSError as exc:
            raise write_error(self._path, exc) from exc


class ParquetFile:
    """Rows go to ``<path>.partial``; ``close`` finishes the file and moves it over
    ``path``, so ``path`` is always a complete Parquet file.  Resuming copies the
    checkpointed rows into the new file."""

    def __init__(self, path: Path, resume: Checkpoint | None, compression: str = "zstd") -> None:
        self._pa: Any = importlib.import_module("pyarrow")
        self._pq: Any = importlib.import_module("pyarrow.parquet")
        pa = self._pa
        self._schema = item_schema()  # the library's typed columns (aiobatch.arrow)
        self._path = path
        self._partial = path.with_name(path.name + ".partial")
        self._buffer: list[BatchItem] = []
        self._closed = False
        self.rows = self.bytes = 0
        old = None
        if resume is not None and resume.rows:
            try:
                old = self._pq.read_table(path, schema=self._schema)
            except (OSError, pa.ArrowException) as exc:
                raise CliError(
                    f"cannot resume: {path} is not a readable Parquet file ({exc}); "
                    "use --force to start over"
                ) from None
            if old.num_rows < resume.rows:
                raise CliError(
                    f"cannot resume: {path} has {old.num_rows} rows, its state file "
                    f"{resume.rows}; use --force to start over"
                )
        self._lock = open_locked(self._partial)
        self._lock.truncate(0)
        self._writer = self._pq.ParquetWriter(
            self._partial, self._schema, compression=None if compression == "none" else compression
        )
        if old is not None and resume is not None:
            self._writer.write_table(old.slice(0, resume.rows))
            self.rows = resume.rows

    def write(self, items: Sequence[BatchItem]) -> None:
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
        if self._closed:
            return
        self._closed = True
        try:
            try:
                self._flush()
            finally:
                self._writer.close()
            os.replace(self._partial, self._path)
            self.bytes = self._path.stat().st_size
        finally:
            self._lock.close()

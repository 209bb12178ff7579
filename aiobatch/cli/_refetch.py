"""``items download --only-failed`` / ``batches download --only-failed``: fetch
again only the items a finished download's index (or JSON Lines output) marks
failed, and put their new lines in place of the old ones.

The old index stays as it is until the end: new result files are written
(atomically) first, then a new index is written beside the old one, synced,
and moved over it.  A kill at any moment leaves the old index (a file fetched
again but not yet indexed is written under the same rules again next time),
so running the command again is always safe.  No line is held whole (a JSON
Lines result may be the size of a document): each is known by its head, the
new ones wait in a temporary file, and the rewrite copies a piece at a time.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol, cast

import msgspec

from .._client import BatchClient
from .._results import ResultStream
from ._context import Context, UsageError
from ._durable import write_error
from ._formats import DOWNLOADS, FORMATS, Options
from ._result_files import INDEX_NAME

__all__ = ["refetch"]

#: Opens a download's results stream limited to ``only`` (item or file ids).
OpenOnly = Callable[[BatchClient, frozenset[str]], ResultStream[Any]]


class _Line(msgspec.Struct):
    """What a line of an index (or a JSON Lines download) says of its item."""

    item_id: str
    status: str


class _Kept(NamedTuple):
    rows: int
    bytes: int


class _LineWriter(Protocol):
    def line(self, r: Any) -> bytes: ...

    def close(self) -> None: ...


class _Row(NamedTuple):
    item_id: str
    status: str
    start: int  #: where the line starts in its file
    length: int  #: its bytes, the newline included


_Rows = list[_Row]
#: Bytes of a line read to know its item: a JSON Lines result after them is
#: skipped over, never held (it may be the size of a document).
_HEAD = 64 * 1024
_COPY = 1 << 20
_RESULT = b',"result":'


def _head(line: bytes, whole: bool) -> bytes:
    """What ``_Line`` is decoded from: the line, or the fields before a result
    too long to hold (the download writes ``result`` last)."""
    if whole:
        return line
    cut = line.find(_RESULT)
    return line[:cut] + b"}" if cut >= 0 else line


def _read(path: Path) -> _Rows:
    """Each line of ``path``: its item, status and place (never a whole line)."""
    rows: _Rows = []
    with open(path, "rb") as f:
        start, n = 0, 0
        while head := f.readline(_HEAD):
            n += 1
            length, piece = len(head), head
            while not piece.endswith(b"\n") and (piece := f.readline(_HEAD)):
                length += len(piece)
                if _RESULT not in head and len(head) < 16 * _HEAD:  # long names first
                    head += piece
            try:
                line = msgspec.json.decode(_head(head, length == len(head)), type=_Line)
            except msgspec.DecodeError as exc:
                raise UsageError(
                    f"cannot fetch again: line {n} of {path} is not a download line ({exc})"
                ) from None
            rows.append(_Row(line.item_id, line.status, start, length))
            start += length
    return rows


def _copy(src: IO[bytes], start: int, length: int, dst: IO[bytes]) -> None:
    src.seek(start)
    while length > 0:
        piece = src.read(min(length, _COPY))
        if not piece:
            raise OSError(5, "the file was cut while it was being rewritten")
        dst.write(piece)
        length -= len(piece)


def _replace_lines(
    path: Path, rows: _Rows, new: Mapping[str, tuple[int, int]], spool: IO[bytes]
) -> None:
    """``path`` rewritten with the ``new`` lines (their place in ``spool``) in
    place of the old ones (by item id), then moved over it: readers see the
    old file or the new one.  Copied a piece at a time."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(path, "rb") as old, open(tmp, "wb") as f:
            for row in rows:
                fresh = new.get(row.item_id)
                if fresh is None:
                    _copy(old, row.start, row.length, f)
                else:
                    _copy(spool, *fresh, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from exc


def _spooled(sink: _LineWriter, record: Any, spool: IO[bytes]) -> tuple[int, int]:
    """``record``'s new line appended to ``spool``; its place there."""
    start = spool.seek(0, os.SEEK_END)
    pieces = sink.pieces(record) if hasattr(sink, "pieces") else (sink.line(record),)
    for piece in pieces:
        spool.write(piece)
    return start, spool.tell() - start


def _open(ctx: Context, fmt: str, out: Path, state_path: Path) -> tuple[Path, _LineWriter, _Rows]:
    """The index, a writer on it (holding the download's lock), its lines."""
    index = out / INDEX_NAME if fmt == "files" else out
    if state_path.exists():
        raise UsageError(
            f"{out} holds an interrupted download: finish it with --resume, then fetch "
            "its failed items again with --only-failed"
        )
    if not index.exists():
        raise UsageError(f"nothing to fetch again: {index} does not exist (run the download first)")
    kept = _Kept(0, index.stat().st_size)
    sink = cast(_LineWriter, FORMATS[fmt].to_file(DOWNLOADS, out, kept, Options()))
    try:
        return index, sink, _read(index)
    except BaseException:
        sink.close()
        raise


async def refetch(
    ctx: Context,
    fmt: str,
    out: Path,
    state_path: Path,
    open_only: OpenOnly,
    adapt: Callable[[Any], Any],
    before: Callable[[BatchClient], Awaitable[None]] | None = None,
) -> int:
    """Fetch again the failed items of the finished download at ``out``."""
    client = ctx.client()  # a missing key is reported before any file is touched
    index, sink, rows = _open(ctx, fmt, out, state_path)
    # The new lines wait on the disk, not in memory: a result may be huge.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    try:
        failed = frozenset(row.item_id for row in rows if row.status != "ok")
        if not failed:
            ctx.note(f"no failed items in {index}: nothing to fetch again")
            return 0
        started, new, ok = time.monotonic(), dict[str, tuple[int, int]](), 0
        async with client:
            if before is not None:  # as the download did (a batch's source names)
                await before(client)
            results = open_only(client, failed)
            with ctx.progress("fetching failed results again") as bar:
                async with results:
                    async for r in results:
                        record = adapt(r)
                        new[record.item.item_id] = _spooled(sink, record, spool)
                        ok += r.ok
                        bar.update(len(new), len(failed))
        _replace_lines(index, rows, new, spool)
    except BaseException:
        ctx.note(f"{index} is unchanged: run the same command again to fetch its failed items")
        raise
    finally:
        sink.close()
        spool.close()
    still = len(failed) - ok
    ctx.note(
        f"fetched {len(new):,} of {len(failed):,} failed items again in "
        f"{time.monotonic() - started:.1f}s: {ok:,} now ok, {still:,} still without a result "
        f"({index} says which and why)"
    )
    return 1 if still else 0

"""``items download --only-failed`` / ``batches download --only-failed``: fetch
again only the items a finished download's index (or JSON Lines output) marks
failed, and put their new lines in place of the old ones.

The old index stays as it is until the end: new result files are written
(atomically) first, then a new index is written beside the old one, synced,
and moved over it.  A kill at any moment leaves the old index (a file fetched
again but not yet indexed is written under the same rules again next time),
so running the command again is always safe.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

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


_Rows = list[tuple[str, str, bytes]]


def _read(path: Path) -> _Rows:
    """``(item_id, status, line)`` of every line of ``path``."""
    rows = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            try:
                head = msgspec.json.decode(line, type=_Line)
            except msgspec.DecodeError as exc:
                raise UsageError(
                    f"cannot fetch again: line {n} of {path} is not a download line ({exc})"
                ) from None
            rows.append((head.item_id, head.status, line))
    return rows


def _replace_lines(
    path: Path, rows: list[tuple[str, str, bytes]], new: Mapping[str, bytes]
) -> None:
    """``path`` rewritten with ``new`` lines in place of the old ones (by item
    id), then moved over it: readers see the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    lines: Iterator[bytes] = (new.get(item_id, line) for item_id, _, line in rows)
    try:
        with open(tmp, "wb") as f:
            for line in lines:
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from exc


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
    try:
        failed = frozenset(item_id for item_id, status, _ in rows if status != "ok")
        if not failed:
            ctx.note(f"no failed items in {index}: nothing to fetch again")
            return 0
        started, new, ok = time.monotonic(), dict[str, bytes](), 0
        async with client:
            if before is not None:  # as the download did (a batch's source names)
                await before(client)
            results = open_only(client, failed)
            with ctx.progress("fetching failed results again") as bar:
                async with results:
                    async for r in results:
                        record = adapt(r)
                        new[record.item.item_id] = sink.line(record)
                        ok += r.ok
                        bar.update(len(new), len(failed))
        _replace_lines(index, rows, new)
    except BaseException:
        ctx.note(f"{index} is unchanged: run the same command again to fetch its failed items")
        raise
    finally:
        sink.close()
    still = len(failed) - ok
    ctx.note(
        f"fetched {len(new):,} of {len(failed):,} failed items again in "
        f"{time.monotonic() - started:.1f}s: {ok:,} now ok, {still:,} still without a result "
        f"({index} says which and why)"
    )
    return 1 if still else 0

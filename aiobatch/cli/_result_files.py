"""Writers of ``items download``: one file per item plus an index (``files``),
or one JSON object per item (``jsonl``).  Both are ``Writer``s of
``ItemResult``s, registered in the format registry (``_formats``) under the
``downloads`` records.

``files``: each result is written to a temporary file in the directory and
renamed into place (the directory never holds a half-written result), then its
line is appended to the index and flushed.  ``jsonl``: whole lines, flushed.
``bytes`` is the length of the index (``files``) or of the file (``jsonl``): the
checkpoint a resumed download cuts back to.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Literal

import msgspec

from .._results import ItemResult, ResultContent
from ._context import CliError
from ._durable import (
    append_whole,
    lock_exclusive,
    open_locked,
    save_atomically,
    truncate_to_checkpoint,
    write_error,
)
from ._writers import Checkpoint

__all__ = ["INDEX_NAME", "TEMP_NAME", "FilesWriter", "JsonlResultsWriter", "safe_name"]

INDEX_NAME = "aiobatch-index.jsonl"
TEMP_NAME = ".aiobatch-partial"
#: Bytes of the item name kept in a file name (most file systems allow 255).
_MAX_STEM = 150
_EXT = {"markdown": ".md", "text": ".txt", "json": ".json", "classification": ".json"}
#: Windows device names, whatever follows them after a dot, and whatever spaces
#: or dots end them (``Con .pdf`` is the console): digits include ¹ ² ³.
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{port}{digit}" for port in ("com", "lpt") for digit in "0123456789¹²³"}
)


def _reserved(stem: str) -> bool:
    return stem.split(".")[0].rstrip(" .").casefold() in _WINDOWS_RESERVED


def _unsafe(char: str) -> bool:
    code = ord(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or char in '/\\:*?"<>|'
        or unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs")  # bidi, LS/PS, surrogates
    )


def fold(name: str) -> str:
    """The key two names collide under on a case-insensitive file system (NTFS,
    APFS): full Unicode case folding after normalisation (so ``Σας``/``Σασ``,
    ``ſ``/``s``, ``µ``/``μ`` are one name)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def safe_name(item_name: str, item_id: str, ext: str, used: set[str]) -> str:
    """A file name for an item's output, safe in any directory, unique in ``used``
    (compared case-insensitively), which it is added to.

    Path separators, ``:`` and the characters Windows refuses, control
    characters (NUL included), bidi controls and line separators become ``_``;
    runs of dots become one; leading dots and spaces go (no hidden files), as do trailing dots
    and spaces; reserved device names get a ``_``; the name is clipped to 150
    UTF-8 bytes.  An empty result falls back to the item id.  A name already
    taken gets ``~<item id>`` (then a counter, should even that be taken).
    """
    name = "".join("_" if _unsafe(c) else c for c in item_name)
    name = unicodedata.normalize("NFC", name)
    while ".." in name:
        name = name.replace("..", ".")
    name = name.lstrip(". ").rstrip(". ")
    stem = _clip(name, _MAX_STEM).rstrip(". ")
    if not stem.strip("_"):
        stem = ""
    if _reserved(stem):
        stem = "_" + stem
    suffix = _clip("".join("_" if _unsafe(c) else c for c in item_id), 80).lstrip(". ")
    if _reserved(suffix):  # the name of an item without a usable name
        suffix = "_" + suffix
    candidates = [f"{stem}{ext}"] if stem else []
    candidates.append(f"{stem}~{suffix}{ext}" if stem else f"{suffix or 'item'}{ext}")
    for name in candidates:
        if (key := fold(name)) not in used:
            used.add(key)
            return name
    n = 2
    while True:
        name = f"{stem}~{suffix}~{n}{ext}"
        if (key := fold(name)) not in used:
            used.add(key)
            return name
        n += 1


class _IndexRow(msgspec.Struct, omit_defaults=False):
    item_id: str
    item_name: str
    file: str | None
    status: Literal["ok", "failed"]
    error: str | None
    error_kind: str | None
    bytes: int


_encode = msgspec.json.Encoder().encode
_NULL_END = b"null}"
#: Bytes of a result read at a time into a JSON Lines line.
_PIECE = 1 << 20
#: JSON's whitespace between tokens may hold line breaks (a pretty-printed
#: answer, a stored file); inside a string they are escaped, so a raw one is
#: always such whitespace, and a space keeps the line one line.
_NO_BREAKS = bytes.maketrans(b"\r\n", b"  ")


def _json_pieces(content: ResultContent) -> Iterator[bytes]:
    empty = True
    for piece in content.chunks(_PIECE):
        empty = empty and not piece.strip()
        yield piece.translate(_NO_BREAKS)
    if empty:  # no JSON value at all: the line must still be one
        yield b"null"


def _text_pieces(content: ResultContent) -> Iterator[bytes]:
    """The text as one JSON string, escaped a piece at a time (a character cut
    between two pieces is decoded whole, as the text of the whole would be)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    yield b'"'
    for piece in content.chunks(_PIECE):
        yield _encode(decoder.decode(piece))[1:-1]
    yield _encode(decoder.decode(b"", final=True))[1:-1] + b'"'


def _append(f: IO[bytes], line: bytes | Iterable[bytes], length: int, path: Path) -> int:
    """``line`` appended whole (or not at all) and on the disk; the new length."""
    length = append_whole(f.fileno(), line, length, path)
    try:
        # The checkpoint saved next claims these bytes: they must be on the disk
        # first, or a crash leaves a checkpoint longer than the file.
        os.fsync(f.fileno())
    except OSError as exc:
        raise write_error(path, exc) from exc
    return length


def _busy(what: Path) -> str:
    return (
        f"{what} is being written by another aiobatch download: wait for it to "
        "finish (or stop it) before running this one"
    )


def _open_at(path: Path, resume: Checkpoint | None, *, lock: bool) -> IO[bytes]:
    """``path`` opened for appending: emptied for a new download, or cut back to
    the checkpoint, which must hold whole lines the file still has (a shorter
    file is never padded: it means lost or edited data)."""
    length = resume.bytes if resume is not None else 0
    if resume is not None and length and not path.exists():
        raise CliError(f"cannot resume: {path} is missing; use --force to start over")
    f = open_locked(path, _busy(path)) if lock else open(path, "a+b")  # noqa: SIM115
    truncate_to_checkpoint(f, path, length)  # closes ``f`` when the file does not match
    return f


def _decode_index(path: Path, kept: bytes) -> list[_IndexRow]:
    rows = []
    for n, line in enumerate(kept.splitlines(), 1):
        try:
            rows.append(msgspec.json.decode(line, type=_IndexRow))
        except msgspec.DecodeError as exc:
            raise CliError(
                f"cannot resume: line {n} of {path} is not an index line ({exc}); "
                "use --force to start over"
            ) from None
    return rows


class FilesWriter:
    """One file per item under ``root``, and the index."""

    def __init__(self, root: Path, resume: Checkpoint | None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.used: set[str] = {fold(INDEX_NAME)}
        #: Files this run renamed into place (removed by ``discard``).
        self.written: list[str] = []
        self._dir = os.open(root, os.O_RDONLY)
        try:
            lock_exclusive(self._dir, _busy(root))
            index = root / INDEX_NAME
            self.index = _open_at(index, resume, lock=False)
        except BaseException:
            os.close(self._dir)
            raise
        self.rows = resume.rows if resume is not None else 0
        self.bytes = resume.bytes if resume is not None else 0
        if self.bytes:
            self.index.seek(0)
            try:
                rows = _decode_index(index, self.index.read(self.bytes))
            except BaseException:
                self.close()
                raise
            self.used.update(fold(row.file) for row in rows if row.file)
        (root / TEMP_NAME).unlink(missing_ok=True)

    def write(self, records: Sequence[ItemResult]) -> None:
        for r in records:
            self.bytes = self._write(r)
            self.rows += 1

    def _write(self, r: ItemResult) -> int:
        return _append(self.index, self.line(r), self.bytes, self.root / INDEX_NAME)

    def line(self, r: ItemResult) -> bytes:
        """Write ``r``'s file (if it has a result); its index line, not yet
        appended (``--only-failed`` puts it in place of the old one)."""
        item = r.item
        name: str | None = None
        if r.content is not None:
            ext = _EXT.get(r.content.kind, ".out")
            name = safe_name(item.item_name, item.item_id, ext, self.used)
            self._put(name, r.content)
        err = r.error
        row = _IndexRow(
            item.item_id,
            item.item_name,
            name,
            "ok" if err is None else "failed",
            err.message if err is not None else None,
            err.kind if err is not None else None,
            r.nbytes,
        )
        return _encode(row) + b"\n"

    def _put(self, name: str, content: ResultContent) -> None:
        # Whole and on the disk before it is renamed in and indexed; a spooled
        # result is never whole in memory.
        save_atomically(self.root / name, content.chunks(), sync=True, tmp=self.root / TEMP_NAME)
        self.written.append(name)

    def close(self) -> None:
        try:
            self.index.close()
            (self.root / TEMP_NAME).unlink(missing_ok=True)
        finally:
            if self._dir >= 0:
                os.close(self._dir)
                self._dir = -1

    def discard(self) -> None:
        """Remove what this run wrote (the download failed for good)."""
        self.close()
        for name in (*self.written, INDEX_NAME):
            (self.root / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only when nothing else is there
            self.root.rmdir()


class JsonlResultsWriter:
    """One JSON object per item in one file: item_id, item_name, status, error,
    error_kind, bytes, result (text, or the JSON as sent).  A result is written
    a piece at a time (a spooled one is never whole in memory), the line all or
    nothing."""

    def __init__(self, path: Path, resume: Checkpoint | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.bytes = resume.bytes if resume is not None else 0
        self.rows = resume.rows if resume is not None else 0
        self.out = _open_at(path, resume, lock=True)

    def write(self, records: Sequence[ItemResult]) -> None:
        for r in records:
            self.bytes = self._write(r)
            self.rows += 1

    def _write(self, r: ItemResult) -> int:
        return _append(self.out, self.pieces(r), self.bytes, self.path)

    def line(self, r: ItemResult) -> bytes:
        """``r``'s line, not yet appended (whole: for a rewrite of the file)."""
        return b"".join(self.pieces(r))

    def pieces(self, r: ItemResult) -> Iterator[bytes]:
        """``r``'s line in pieces: the fields, then the result streamed from the
        content, last so that nothing follows what cannot be held whole."""
        item, err, content = r.item, r.error, r.content
        row = {
            "item_id": item.item_id,
            "item_name": item.item_name,
            "status": "ok" if err is None else "failed",
            "error": err.message if err is not None else None,
            "error_kind": err.kind if err is not None else None,
            "bytes": r.nbytes,
            "result": None,
        }
        head = _encode(row)
        if content is None:
            yield head + b"\n"
            return
        yield head[: -len(_NULL_END)]
        if content.kind in ("json", "classification"):
            yield from _json_pieces(content)
        else:
            yield from _text_pieces(content)
        yield b"}\n"

    def close(self) -> None:
        self.out.close()

    def discard(self) -> None:
        """Remove the file (the download failed for good)."""
        self.close()
        self.path.unlink(missing_ok=True)

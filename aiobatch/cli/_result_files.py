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

import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from .._results import ItemResult
from ._writers import Checkpoint

__all__ = ["INDEX_NAME", "TEMP_NAME", "FilesWriter", "JsonlResultsWriter", "safe_name"]

INDEX_NAME = "aiobatch-index.jsonl"
TEMP_NAME = ".aiobatch-partial"
#: Bytes of the item name kept in a file name (most file systems allow 255).
_MAX_STEM = 150
_EXT = {"markdown": ".md", "text": ".txt", "json": ".json", "classification": ".json"}
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


def _unsafe(char: str) -> bool:
    code = ord(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or char in '/\\:*?"<>|'
        or unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs")  # bidi, LS/PS, surrogates
    )


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
    if stem.split(".")[0].lower() in _WINDOWS_RESERVED:
        stem = "_" + stem
    suffix = _clip("".join("_" if _unsafe(c) else c for c in item_id), 80).lstrip(". ")
    candidates = [f"{stem}{ext}"] if stem else []
    candidates.append(f"{stem}~{suffix}{ext}" if stem else f"{suffix or 'item'}{ext}")
    for name in candidates:
        if name.lower() not in used:
            used.add(name.lower())
            return name
    n = 2
    while True:
        name = f"{stem}~{suffix}~{n}{ext}"
        if name.lower() not in used:
            used.add(name.lower())
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


def _append(f: IO[bytes], line: bytes) -> int:
    f.write(line)
    f.flush()
    return f.tell()


def _open_at(path: Path, length: int) -> IO[bytes]:
    """``path`` opened for appending after cutting it to ``length`` bytes."""
    f = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - closed by the sink
    f.truncate(length)
    f.seek(length)
    return f


class FilesWriter:
    """One file per item under ``root``, and the index."""

    def __init__(self, root: Path, resume: Checkpoint | None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.used: set[str] = {INDEX_NAME.lower()}
        length = resume.bytes if resume is not None else 0
        self.rows = resume.rows if resume is not None else 0
        index = root / INDEX_NAME
        if length and index.exists():
            with open(index, "rb") as f:
                kept = f.read(length)
            for line in kept.splitlines():
                row = msgspec.json.decode(line, type=_IndexRow)
                if row.file:
                    self.used.add(row.file.lower())
        self.index = _open_at(index, length)
        self.bytes = length
        (root / TEMP_NAME).unlink(missing_ok=True)

    def write(self, records: Sequence[ItemResult]) -> None:
        for r in records:
            self.bytes = self._write(r)
            self.rows += 1

    def _write(self, r: ItemResult) -> int:
        item = r.item
        name: str | None = None
        if r.content is not None:
            ext = _EXT.get(r.content.kind, ".out")
            name = safe_name(item.item_name, item.item_id, ext, self.used)
            self._put(name, r.content.data)
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
        return _append(self.index, _encode(row) + b"\n")

    def _put(self, name: str, data: bytes) -> None:
        tmp = self.root / TEMP_NAME
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.root / name)

    def close(self) -> None:
        self.index.close()
        (self.root / TEMP_NAME).unlink(missing_ok=True)


class JsonlResultsWriter:
    """One JSON object per item in one file: item_id, item_name, status, error,
    error_kind, bytes, result (text, or the JSON as sent)."""

    def __init__(self, path: Path, resume: Checkpoint | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.bytes = resume.bytes if resume is not None else 0
        self.rows = resume.rows if resume is not None else 0
        self.out = _open_at(path, self.bytes)

    def write(self, records: Sequence[ItemResult]) -> None:
        for r in records:
            self.bytes = self._write(r)
            self.rows += 1

    def _write(self, r: ItemResult) -> int:
        item, err, content = r.item, r.error, r.content
        value: Any = None
        if content is not None:
            value = (
                msgspec.Raw(content.data)
                if content.kind in ("json", "classification")
                else content.text
            )
        row = {
            "item_id": item.item_id,
            "item_name": item.item_name,
            "status": "ok" if err is None else "failed",
            "error": err.message if err is not None else None,
            "error_kind": err.kind if err is not None else None,
            "bytes": r.nbytes,
            "result": value,
        }
        return _append(self.out, _encode(row) + b"\n")

    def close(self) -> None:
        self.out.close()

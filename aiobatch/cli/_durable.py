"""Files that never lie: whole records or none (a full disk included),
atomic replacement, a lock per output, a checkpoint cut-back that refuses a
file shorter than its checkpoint, and digests that show a hand-edited state
file.  Used by exports (``_writers``, ``_export``) and downloads
(``_result_files``, ``_download``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

from ._context import CliError, UsageError

__all__ = [
    "append_whole",
    "check_same",
    "check_unedited",
    "edited_field",
    "holds_no_data",
    "lock_exclusive",
    "open_locked",
    "save_atomically",
    "seal",
    "truncate_to_checkpoint",
    "write_error",
]

_encoder = msgspec.json.Encoder()


def write_error(path: Path, exc: OSError) -> CliError:
    """A write failure that names its file (a full disk's OS error names none)."""
    return CliError(f"cannot write {path}: {exc.strerror or exc}")


#: The one call that puts bytes in an output file (a test makes it fail as a
#: full disk does: part of the data written, then ENOSPC).
_os_write = os.write


def append_whole(fd: int, data: bytes | Iterable[bytes], length: int, path: Path) -> int:
    """Append ``data`` (bytes, or pieces of one record, so a large one is never
    whole in memory) to the file open on ``fd`` (``O_APPEND``), now ``length``
    bytes long: all of it, or none of it.  A failure part-way (a full disk, or
    the pieces raising) cuts the file back to ``length``, so it holds whole
    records only, and names it.  Unbuffered: no remainder is left to be flushed
    at close.  The new length."""
    written = 0
    try:
        for piece in (data,) if isinstance(data, bytes) else data:
            _write_all(fd, piece)
            written += len(piece)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # a FIFO or a device: nothing to cut
            os.ftruncate(fd, length)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise
    return length + written


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_os_write(fd, view) :]


def seal(fields: dict[str, Any]) -> dict[str, str]:
    """A digest of each checkpoint field, saved with them: an edit of a field
    (``next_offset`` raised by hand skips items silently) no longer matches
    its digest, and ``edited_field`` names it."""
    salt = str(fields.get("job_id") or fields.get("batch_id") or "")
    return {name: _digest(salt, name, value) for name, value in fields.items()}


def edited_field(fields: dict[str, Any], check: dict[str, str] | None) -> str | None:
    """The first field whose value does not match the digest saved with it
    (None: none, or a state file of a release that saved no digests)."""
    if check is None:
        return None
    salt = str(fields.get("job_id") or fields.get("batch_id") or "")
    for name, value in fields.items():
        if check.get(name) != _digest(salt, name, value):
            return name
    return None


def check_unedited(path: Path, fields: dict[str, Any], check: Any, fix: str) -> None:
    """Refuse a state file edited by hand: a raised ``next_offset`` would skip
    items, a lowered one repeat them, and the counts would lie."""
    name = edited_field(fields, check)
    if name is not None:
        raise UsageError(
            f"cannot resume: field {name} of state file {path} was edited (it does not "
            f"match the checkpoint written with it){fix}"
        )


def _digest(salt: str, name: str, value: Any) -> str:
    data = _encoder.encode([salt, name, value])
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def save_atomically(
    path: Path, data: bytes | Iterable[bytes], *, sync: bool = False, tmp: Path | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file, then
    ``os.replace``): readers see the old file or the new one.  On a failure
    (a full disk) the old file stands, no empty temporary file is left, and
    the error names ``path``.  ``data``: bytes, or pieces of them (a spooled
    result is never whole in memory).  ``sync``: on the disk before it replaces;
    ``tmp``: the temporary file (default: ``path`` + ``.tmp``)."""
    tmp = tmp or path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            for piece in (data,) if isinstance(data, bytes) else data:
                _write_all(fd, piece)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from exc


def lock_exclusive(fd: int, busy: str) -> None:
    """Hold an exclusive lock on ``fd`` while it is open, or fail with ``busy``:
    two runs writing one place would interleave their records and checkpoints."""
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise UsageError(busy) from None


def open_locked(path: Path, busy: str | None = None) -> BinaryIO:
    """Open ``path`` for writing without truncating it, then lock it."""
    f = open(path, "a+b")  # noqa: SIM115 (the writer closes it)
    try:
        lock_exclusive(f.fileno(), busy or f"{path} is being written by another aiobatch export")
    except BaseException:
        f.close()
        raise
    return f


def truncate_to_checkpoint(f: BinaryIO, path: Path, length: int) -> None:
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


def holds_no_data(path: Path, header: bytes = b"") -> bool:
    """Whether ``path`` holds nothing but ``header``: what a kill leaves between
    creating an output and saving its first checkpoint.  Such a file, without
    a state file, is no interrupted export or download: resuming starts anew."""
    try:
        size = path.stat().st_size
        return size == 0 or (size == len(header) and path.read_bytes() == header)
    except OSError:
        return False


def check_same(had: object, want: object, names: tuple[str, ...], path: Path, *, what: str) -> None:
    """Refuse to resume ``what`` (an export, a download) recorded in ``path``
    with other identity fields than this command asks for."""
    for name in names:
        recorded, asked = getattr(had, name), getattr(want, name)
        if recorded != asked:
            raise UsageError(
                f"cannot resume: the interrupted {what} has {name}={recorded!r} but this "
                f"command asks for {asked!r} (state: {path}); use --force to start over"
            )

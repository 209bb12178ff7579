"""The state file of an export or a download: its identity fields, its counts,
and a ``Checkpoint`` (``to_json()``'s object) as the record of what is done,
saved with a digest of each field (a hand-edited file is refused).

Release 1 saved ``next_offset`` and ``filter_mode`` where the checkpoint now
is: such a file still loads, as a checkpoint at that offset."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import msgspec

from ..checkpoint import Checkpoint
from ._context import UsageError
from ._durable import check_unedited, save_atomically, seal

__all__ = ["VERSION", "load_fields", "save_fields"]

#: 2: the resume position is a ``Checkpoint``; 1: ``next_offset`` and ``filter_mode``.
VERSION = 2
_FIX = "; use --force to start over"


def save_fields(state: Any, path: Path, *, sync: bool = False) -> None:
    """Replace the state file ``path`` with the fields of ``state`` (a
    dataclass with a ``checkpoint``), atomically."""
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    fields["checkpoint"] = msgspec.json.decode(fields["checkpoint"].to_json())
    save_atomically(path, msgspec.json.encode({**fields, "check": seal(fields)}), sync=sync)


def load_fields(path: Path, versions: dict[int, type[msgspec.Struct]]) -> dict[str, Any]:
    """The fields of the state file ``path``, checked against the struct of its
    version and the digests saved with them; ``checkpoint`` a ``Checkpoint``."""
    try:
        raw = msgspec.json.decode(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot resume: cannot read {path}: {exc.strerror}") from None
    except msgspec.DecodeError:
        raise UsageError(f"cannot resume: state file {path} is not valid JSON{_FIX}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"cannot resume: state file {path} is not a JSON object{_FIX}")
    version = raw.get("version", VERSION)
    struct = versions.get(version) if isinstance(version, int) else None
    if struct is None:
        raise UsageError(f"cannot resume: {path} was written by another aiobatch version")
    try:
        doc = msgspec.convert(raw, struct)
    except msgspec.ValidationError as exc:  # names the field: "... - at `$.bytes`"
        raise UsageError(f"cannot resume: invalid state file {path}: {exc}{_FIX}") from None
    fields = msgspec.structs.asdict(doc)
    check_unedited(path, fields, fields.pop("check"), _FIX)
    if version == 1:
        mode = fields.pop("filter_mode")
        fields["checkpoint"] = _at(fields.pop("next_offset"), mode)
    else:
        fields["checkpoint"] = _checkpoint(path, fields["checkpoint"])
    fields["version"] = VERSION
    return fields


def _checkpoint(path: Path, doc: dict[str, Any]) -> Checkpoint:
    try:
        return Checkpoint.from_json(msgspec.json.encode(doc))
    except ValueError as exc:
        raise UsageError(
            f"cannot resume: field checkpoint of state file {path} is not a checkpoint "
            f"({exc}){_FIX}"
        ) from None


def _at(offset: int, filter_mode: str) -> Checkpoint:
    """The checkpoint a release 1 state file meant: everything before ``offset``
    done, counted in ``filter_mode`` ("" or "none": not known)."""
    mode = filter_mode if filter_mode in ("server", "client") else None
    doc = {"version": 1, "kind": "offset", "offset": offset, "filter_mode": mode}
    return Checkpoint.from_json(msgspec.json.encode(doc))

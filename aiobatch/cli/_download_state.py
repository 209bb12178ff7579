"""The checkpoint of a download (``items download``, ``batches download``):
what it is (identity), how far it got, and the counts, saved atomically with a
digest of each field (a hand-edited state file is refused)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from ._context import UsageError
from ._durable import check_same, check_unedited, save_atomically, seal

__all__ = ["JSONL_STATE_SUFFIX", "STATE_NAME", "DownloadState"]

STATE_NAME = ".aiobatch-download.json"
JSONL_STATE_SUFFIX = ".aiobatch-state.json"
_VERSION = 1

_Count = Annotated[int, msgspec.Meta(ge=0)]


class _StateFile(msgspec.Struct):
    job_id: str
    status: str | None
    result: str | None
    format: Literal["files", "jsonl"]
    organization_id: str | None
    project_id: str | None
    filter_mode: Literal["", "none", "server", "client"]
    next_offset: _Count
    items: _Count
    ok: _Count
    failed: _Count
    bytes: _Count
    length: _Count
    version: int
    batch_id: str | None = None
    check: dict[str, str] | None = None  # absent from state files of earlier releases


@dataclass
class DownloadState:
    job_id: str
    status: str | None
    result: str | None
    format: str
    organization_id: str | None = None
    project_id: str | None = None
    filter_mode: str = ""
    next_offset: int = 0
    items: int = 0
    ok: int = 0
    failed: int = 0
    bytes: int = 0  #: bytes of results written
    length: int = 0  #: length of the index (files) or of the output (jsonl)
    version: int = _VERSION
    #: ``batches download``: the v2 batch (``job_id`` is then empty).
    batch_id: str | None = None

    IDENTITY = (
        "job_id",
        "batch_id",
        "status",
        "result",
        "format",
        "organization_id",
        "project_id",
    )

    def save(self, path: Path) -> None:
        fields = asdict(self)
        data = msgspec.json.encode({**fields, "check": seal(fields)})
        save_atomically(path, data, sync=True)

    @classmethod
    def load(cls, path: Path) -> DownloadState:
        fix = "; use --force to start over"
        try:
            doc = msgspec.json.decode(path.read_bytes(), type=_StateFile)
        except OSError as exc:
            raise UsageError(f"cannot resume: cannot read {path}: {exc.strerror}") from None
        except msgspec.DecodeError as exc:
            raise UsageError(f"cannot resume: invalid state file {path}: {exc}{fix}") from None
        if doc.version != _VERSION:
            raise UsageError(f"cannot resume: {path} was written by another aiobatch version")
        fields = msgspec.structs.asdict(doc)
        check_unedited(path, fields, fields.pop("check"), fix)
        return cls(**fields)

    def check_same(self, want: DownloadState, path: Path) -> None:
        check_same(self, want, self.IDENTITY, path, what="download")

"""The checkpoint of a download (``items download``, ``batches download``):
what it is (identity), what is done (a ``Checkpoint``: every result acked once
written), and the counts, saved atomically with a digest of each field (a
hand-edited state file is refused)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from ..checkpoint import Checkpoint
from ._durable import check_same
from ._state import VERSION, load_fields, save_fields

__all__ = ["JSONL_STATE_SUFFIX", "STATE_NAME", "DownloadState"]

STATE_NAME = ".aiobatch-download.json"
JSONL_STATE_SUFFIX = ".aiobatch-state.json"

_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Fields(msgspec.Struct, kw_only=True):
    job_id: str
    status: str | None
    result: str | None
    format: Literal["files", "jsonl"]
    organization_id: str | None
    project_id: str | None
    items: _Count
    ok: _Count
    failed: _Count
    bytes: _Count
    length: _Count
    version: int
    batch_id: str | None = None
    check: dict[str, str] | None = None  # absent from state files of earlier releases


class _StateFile(_Fields, kw_only=True, forbid_unknown_fields=True):
    checkpoint: dict[str, Any]


class _StateFileV1(_Fields, kw_only=True):
    filter_mode: Literal["", "none", "server", "client"]
    next_offset: _Count


@dataclass
class DownloadState:
    job_id: str
    status: str | None
    result: str | None
    format: str
    organization_id: str | None = None
    project_id: str | None = None
    #: What is done: each result is acked once it is on disk.
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    items: int = 0
    ok: int = 0
    failed: int = 0
    bytes: int = 0  #: bytes of results written
    length: int = 0  #: length of the index (files) or of the output (jsonl)
    version: int = VERSION
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
        save_fields(self, path, sync=True)

    @classmethod
    def load(cls, path: Path) -> DownloadState:
        return cls(**load_fields(path, {1: _StateFileV1, VERSION: _StateFile}))

    def check_same(self, want: DownloadState, path: Path) -> None:
        check_same(self, want, self.IDENTITY, path, what="download")

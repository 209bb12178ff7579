"""What a results stream hands out: one ``ItemResult`` per item, holding the
content or a typed per-item ``ItemError``, and the position to resume from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from .._errors import AiobatchError
from .._paging import FilterMode, ScanProgress
from ..models import BatchFileResult, BatchItem, JobReference

__all__ = [
    "ErrorKind",
    "FileResult",
    "ItemError",
    "ItemFailure",
    "ItemResult",
    "ResultContent",
    "ResultsProgress",
    "UnsupportedJobTypeError",
]

#: Why one item has no result:
#: ``no_job``: the item has no processing job (skipped, pending, cancelled...);
#: ``missing``: the processing job or its result does not exist (404);
#: ``failed``: the processing job ended in ``ERROR`` / ``CANCELLED``;
#: ``not_ready``: the processing job has not finished;
#: ``too_large``: the result is over ``Limits.max_body_bytes``;
#: ``unavailable``: the result request failed for good (retries exhausted);
#: ``invalid``: the server answered something that is not a result;
#: ``unsupported_tier``: the job's tier has no such result (``fast`` parse jobs
#: have no markdown or items: ask ``result="text"``).
ErrorKind = Literal[
    "no_job",
    "missing",
    "failed",
    "not_ready",
    "too_large",
    "unavailable",
    "invalid",
    "unsupported_tier",
]


class UnsupportedJobTypeError(AiobatchError, LookupError):
    """No resolver knows where the output of this job type lives."""

    def __init__(self, message: str, *, job_type: str) -> None:
        super().__init__(message)
        self.job_type = job_type


class ItemFailure(Exception):
    """Raised by a resolver: this item has no result (the stream goes on)."""

    def __init__(self, kind: ErrorKind, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item's result could not be had."""

    kind: ErrorKind
    message: str
    #: The HTTP status behind it, if any.
    status_code: int | None = None
    #: The exception behind it, if any (an ``AiobatchError``).
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class ResultContent:
    """An item's output: ``data`` is what to store (UTF-8 text for ``text`` and
    ``markdown``, JSON for ``json`` and ``classification``)."""

    kind: str
    data: bytes
    #: ``job_metadata`` of a parse result (pages, credits...), loosely typed.
    metadata: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    def json(self) -> Any:
        """``data`` decoded as JSON (the pages of a ``json`` result, the list of
        classifications of a classify result)."""
        return msgspec.json.decode(self.data)

    def __repr__(self) -> str:
        return f"ResultContent(kind={self.kind!r}, {len(self.data):,} bytes)"


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item of the job and its output (``content``) or why there is none
    (``error``).  ``next_offset`` is the resume point just past this item: pass
    it as ``start_offset`` (with the same ``filter_mode``) to continue."""

    item: BatchItem
    content: ResultContent | None
    error: ItemError | None
    next_offset: int

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def nbytes(self) -> int:
        return len(self.content.data) if self.content is not None else 0


@dataclass(frozen=True, slots=True)
class FileResult:
    """One source file of a v2 batch and its output (``content``) or why there is
    none (``error``: ``no_job`` when the batch made no job for the file, ``failed``,
    ``missing``, ``not_ready``...).  ``index`` is the file's place in the batch's
    results; ``next_offset`` (``index + 1``) resumes just past it."""

    file: BatchFileResult
    content: ResultContent | None
    error: ItemError | None
    index: int

    @property
    def file_id(self) -> str:
        return self.file.source_directory_file_id

    @property
    def job_reference(self) -> JobReference | None:
        return self.file.job_reference

    @property
    def next_offset(self) -> int:
        return self.index + 1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def nbytes(self) -> int:
        return len(self.content.data) if self.content is not None else 0


@dataclass(slots=True)
class ResultsProgress:
    """Live counters of a results stream (poll them from another task)."""

    items: int = 0  #: results the consumer has received
    ok: int = 0
    failed: int = 0
    bytes: int = 0  #: bytes of content received
    next_offset: int = 0  #: resume point: every item before it was received
    #: The status-filter mode of the item scan, once it started.
    filter_mode: FilterMode | None = None
    job_type: str | None = None
    kind: str | None = None
    #: Result requests: ``requests``, ``retries``, ``rate_limited``, ``concurrency``.
    fetches: ScanProgress = field(default_factory=ScanProgress)
    #: The item scan's own counters, once it started.
    listing: ScanProgress | None = None
    state: Literal["running", "finished", "stopped", "failed"] = "running"
    done: bool = False

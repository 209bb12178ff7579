"""What a results stream hands out: one ``ItemResult`` per item, holding the
content or a typed per-item ``ItemError``, and the position to resume from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

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


class ResultContent:
    """An item's output: ``data`` is what to store (UTF-8 text for ``text`` and
    ``markdown``, JSON for ``json`` and ``classification``).

    A result fetched through a presigned URL (too large to come inline) is
    *spooled*: its bytes wait in an anonymous temporary file, ``chunks()`` reads
    them a piece at a time (the CLI's writers do), and ``data`` reads them whole
    only when asked.  ``size`` is known either way."""

    __slots__ = ("_data", "_spool", "kind", "metadata", "size")

    def __init__(
        self,
        kind: str,
        data: bytes = b"",
        metadata: dict[str, Any] | None = None,
        *,
        spool: IO[bytes] | None = None,
        size: int | None = None,
    ) -> None:
        self.kind = kind
        #: ``job_metadata`` of a parse result (pages, credits...), loosely typed.
        self.metadata = metadata
        self._data = data
        self._spool = spool
        self.size: int = len(data) if spool is None else int(size or 0)

    @property
    def spooled(self) -> bool:
        return self._spool is not None

    @property
    def data(self) -> bytes:
        if self._spool is None:
            return self._data
        self._spool.seek(0)
        return self._spool.read()

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes, a piece at a time (from the spool file, or ``data``)."""
        if self._spool is None:
            if self._data:
                yield self._data
            return
        self._spool.seek(0)
        while piece := self._spool.read(chunk_size):
            yield piece

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    def json(self) -> Any:
        """``data`` decoded as JSON (the pages of a ``json`` result, the list of
        classifications of a classify result)."""
        return msgspec.json.decode(self.data)

    def close(self) -> None:
        """Drop a spooled result's temporary file now (else when collected)."""
        if self._spool is not None:
            self._spool.close()

    def __del__(self) -> None:
        # The file is anonymous (unlinked at creation): closing frees its space.
        self.close()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResultContent):
            return NotImplemented
        return (self.kind, self.metadata, self.data) == (other.kind, other.metadata, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        how = ", spooled" if self._spool is not None else ""
        return f"ResultContent(kind={self.kind!r}, {self.size:,} bytes{how})"


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
        return self.content.size if self.content is not None else 0


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
        return self.content.size if self.content is not None else 0


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

"""What a scan hands out (``Page``), how it is configured (``ScanOptions``) and
what it reports while it runs (``ScanProgress``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypedDict, TypeVar

T = TypeVar("T")

__all__ = [
    "MAX_CONCURRENCY",
    "FilterMode",
    "OnDrift",
    "Page",
    "Resolved",
    "ScanKw",
    "ScanOptions",
    "ScanProgress",
    "ScanState",
]

FilterMode = Literal["auto", "server", "client"]
OnDrift = Literal["raise", "warn"]
ScanState = Literal["running", "finished", "stopped", "failed"]

#: Page requests in flight per scan, at most: far above what any server allows
#: one client, low enough that a typo (10**6) is an error, not a stalled loop.
MAX_CONCURRENCY = 1024


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items of one page, in server order.

    ``offset`` is where the page starts in the listing that was scanned, and
    ``next_offset`` where the next one starts: pass it as ``start_offset`` to
    resume a scan after this page.  With client-side filtering, ``items`` holds
    only the matching items while the offsets still count every item scanned,
    and ``positions`` holds each kept item's offset in the scanned listing.
    """

    offset: int
    next_offset: int
    items: list[T]
    total_size: int | None
    positions: list[int] | None = None
    #: Cursor-paginated listings: the token of the page after this one (pass it
    #: as ``start_token`` to resume after this page; None after the last page).
    next_token: str | None = None
    #: Cursor listings: items of ``next_token``'s page already handed out (a
    #: page cut by ``max_items``); pass it as ``start_skip`` with the token.
    next_skip: int = 0


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How to walk a listing.

    ``page_size`` items per request (adapted down if the server caps it);
    ``concurrency`` page requests in flight at most (adapted down on 429s, then
    back up); ``start_offset`` to resume; ``max_items`` to stop early.
    ``filter_mode`` only matters for status-filtered item scans: ``"server"``
    sends the filter (fast; on a running job items can be skipped or repeated
    as they change status, which is detected); ``"client"`` scans every item and
    filters locally (no drift, more bytes); ``"auto"`` (default) asks the job's
    status first and filters on the server only when the job is finished.
    ``on_drift``: raise ``DriftError`` (default) or log a warning and go on
    (items already received are then dropped, never delivered twice).
    ``dedup_window``: the duplicate check remembers the keys of this many recent
    items (about 100 bytes each; default 20,000, about 2 MB, beside the pages
    in flight); ``None`` checks the whole scan (about 100 MB per million items).

    Read-ahead: a scan holds at most ``2 * concurrency`` pages requested but not
    yet handed out, plus 2 pages waiting in the stream for a slow consumer.
    """

    page_size: int = 500
    concurrency: int = 8
    start_offset: int = 0
    max_items: int | None = None
    filter_mode: FilterMode = "auto"
    on_drift: OnDrift = "raise"
    dedup_window: int | None = 20_000
    #: Cursor-paginated listings: resume from this page token ...
    start_token: str | None = None
    #: ... skipping this many items of its page (``progress.next_skip``).
    start_skip: int = 0

    def __post_init__(self) -> None:
        for name in ("page_size", "concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.concurrency > MAX_CONCURRENCY:
            raise ValueError(
                f"concurrency must be <= {MAX_CONCURRENCY}, got {self.concurrency} "
                "(the client's request budget bounds it further)"
            )
        if self.dedup_window is not None and (
            isinstance(self.dedup_window, bool)
            or not isinstance(self.dedup_window, int)
            or self.dedup_window < 1
        ):
            raise ValueError(f"dedup_window must be an int >= 1 or None, got {self.dedup_window!r}")
        if isinstance(self.start_offset, bool) or not isinstance(self.start_offset, int):
            raise ValueError(f"start_offset must be an int >= 0, got {self.start_offset!r}")
        if self.start_offset < 0:
            raise ValueError(f"start_offset must be >= 0, got {self.start_offset}")
        if self.max_items is not None and (
            isinstance(self.max_items, bool)
            or not isinstance(self.max_items, int)
            or self.max_items < 0
        ):
            raise ValueError(f"max_items must be an int >= 0 or None, got {self.max_items!r}")
        if self.filter_mode not in ("auto", "server", "client"):
            raise ValueError(
                f"filter_mode must be 'auto', 'server' or 'client', got {self.filter_mode!r}"
            )
        if self.on_drift not in ("raise", "warn"):
            raise ValueError(f"on_drift must be 'raise' or 'warn', got {self.on_drift!r}")
        if (
            isinstance(self.start_skip, bool)
            or not isinstance(self.start_skip, int)
            or self.start_skip < 0
        ):
            raise ValueError(f"start_skip must be an int >= 0, got {self.start_skip!r}")
        if self.start_token is not None and (
            not isinstance(self.start_token, str) or not self.start_token
        ):
            raise ValueError(f"start_token must be a non-empty string, got {self.start_token!r}")

    def with_(self, **changes: object) -> ScanOptions:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown scan option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


class ScanKw(TypedDict, total=False):
    """The scan options as keyword arguments (``iter(job_id, page_size=1000)``)."""

    page_size: int
    concurrency: int
    start_offset: int
    max_items: int | None
    filter_mode: FilterMode
    on_drift: OnDrift
    dedup_window: int | None
    start_token: str | None
    start_skip: int


@dataclass(frozen=True, slots=True)
class Resolved(Generic[T]):
    """What a declared listing resolves to when its scan starts (it may ask the
    API first, e.g. whether a job is finished)."""

    #: Query parameters of every page request (the engine adds the paging ones).
    query: Mapping[str, str]
    #: Client-side filter (``None``: keep every item).
    keep: Callable[[T], bool] | None = None
    #: The status-filter mode in effect (None: the scan has no status filter).
    filter_mode: FilterMode | None = None
    #: Whether ``total_size`` is exact, so that a moving total is drift.
    total_is_exact: bool = False
    #: The listing's expected length (the job's own counts), if known: the
    #: first wave is planned from it.  A hint; the scan still proves its end.
    expected: int | None = None
    #: One attempt at ``expected`` (the job's counts) when it is unknown and the
    #: listing sends no total: an empty page at it is then the end, as at a total.
    sizing: Callable[[], Awaitable[int | None]] | None = None


@dataclass(slots=True)
class ScanProgress:
    """Live counters of a scan; safe to poll from another task (e.g. a progress bar).

    ``items`` and ``next_offset`` count what the consumer has received: an
    item iterator moves them item by item, so after a crash or a ``break``
    ``start_offset=progress.next_offset`` resumes with the first item not
    received.  ``state`` is ``"running"``, then ``"finished"`` once the consumer
    has received the end (``done`` is True then, and only then), ``"failed"``
    when the scan raised, or ``"stopped"`` when it was closed, broken out of
    or cancelled before its end.
    """

    items: int = 0  #: items the consumer has received
    scanned: int = 0  #: items read from the server (more with client-side filtering)
    pages: int = 0  #: pages the consumer has received (begun, for an item iterator)
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    total: int | None = None  #: the server's latest total_size for the scanned listing
    concurrency: int = 0  #: current page requests allowed in flight
    next_offset: int = 0  #: resume point: everything before it has been received
    #: The status-filter mode in effect once the scan started (None: no filter).
    filter_mode: FilterMode | None = None
    next_token: str | None = None  #: cursor listings: resume token (None at the end)
    #: Cursor listings: items of ``next_token``'s page already received (resume
    #: with ``start_token=next_token, start_skip=next_skip``).
    next_skip: int = 0
    #: How the listing pages: ``"offset"`` scans resume with ``start_offset``,
    #: ``"cursor"`` scans with ``start_token`` and ``start_skip``.
    style: Literal["offset", "cursor"] = "offset"
    #: Drift seen so far (also logged as warnings), as it happens.
    drift: list[str] = field(default_factory=list)
    #: What the server did that the scan handled without loss (pages asked
    #: again, a lowered page size, a clamped end...), as it happens.
    notes: list[str] = field(default_factory=list)
    state: ScanState = "running"
    done: bool = False  #: the consumer received every item: the scan finished

"""The generic forms of every paged listing, written once.

A resource method declares its listing (``Declared``: the endpoint, how to
resolve the query when the scan starts, the options) and picks a form:
``pages()`` (``iter_pages``), ``items()`` (``iter``) or ``scan()`` (the
``async with`` form).  Every form takes the same keyword-only options: either
``options=ScanOptions(...)`` or the options as keywords (``ScanKw``), or both
(keywords win).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from .._paging import (
    Endpoint,
    ItemIterator,
    PageIterator,
    Resolved,
    Scan,
    ScanOptions,
    Spawner,
    start_scan,
)
from .._paging.iterators import items_of
from ..events import path_template
from ._requester import Api

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

__all__ = ["Declared", "check_checkpoint", "check_style", "fixed", "options_of", "resume_from"]

T = TypeVar("T")


def options_of(
    defaults: ScanOptions, keywords: Mapping[str, Any], consumed: frozenset[str]
) -> ScanOptions:
    """The scan's options: ``options=`` (or the listing's defaults), then every
    keyword the resource did not consume (unknown names raise ``TypeError``)."""
    options = keywords.get("options")
    base = defaults if options is None else options
    if not isinstance(base, ScanOptions):
        raise TypeError(f"options must be a ScanOptions, got {type(base).__name__}")
    rest = {k: v for k, v in keywords.items() if k not in consumed and k != "options"}
    return base.with_(**rest) if rest else base


#: Options that only one kind of scan reads, and their neutral values: set on
#: the other kind, they would be ignored (a resume from the start, a filter mode
#: not applied), so they are refused.
_OFFSET_ONLY = {"start_offset": 0, "filter_mode": "auto"}
_CURSOR_ONLY = {"start_token": None, "start_skip": 0}


def check_style(options: ScanOptions, style: Literal["offset", "cursor"]) -> None:
    """Refuse an option the listing's kind of scan would ignore (``TypeError``)."""
    foreign, resume = (
        (_OFFSET_ONLY, "start_token and start_skip")
        if style == "cursor"
        else (_CURSOR_ONLY, "start_offset")
    )
    for name, neutral in foreign.items():
        value = getattr(options, name)
        if value != neutral:
            raise TypeError(
                f"{name}={value!r} does not apply to this {style}-paged listing "
                f"(it resumes with {resume})"
            )


def check_checkpoint(checkpoint: object) -> Checkpoint | None:
    from ..checkpoint import Checkpoint  # the checkpoint module imports the results types

    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"checkpoint must be a Checkpoint, got {type(checkpoint).__name__}")
    return checkpoint


def resume_from(
    checkpoint: object,
    options: ScanOptions,
    listing: str,
    kind: Literal["offset", "cursor"],
) -> ScanOptions:
    """The options of a scan started from ``checkpoint`` (its watermark, and the
    filter mode its offsets were counted in)."""
    cp = check_checkpoint(checkpoint)
    if cp is None:
        return options
    if options.start_offset or options.start_token is not None or options.start_skip:
        raise TypeError(
            "checkpoint= says where the scan starts: pass it without start_offset / "
            "start_token / start_skip"
        )
    offset, token, mode = cp._resume(listing, kind)
    changes: dict[str, object] = (
        {"start_offset": offset} if kind == "offset" else {"start_token": token}
    )
    if mode is not None and options.filter_mode != mode:
        if options.filter_mode != "auto":
            raise ValueError(
                f"this checkpoint counts offsets with filter_mode={mode!r}, "
                f"not {options.filter_mode!r}"
            )
        changes["filter_mode"] = mode
    return options.with_(**changes)


def fixed(resolved: Resolved[T]) -> Callable[[], Awaitable[Resolved[T]]]:
    """The resolver of a listing whose query is known up front (no API call)."""

    async def resolve() -> Resolved[T]:
        return resolved

    return resolve


@dataclass(frozen=True, slots=True)
class Declared(Generic[T]):
    """One paged listing, ready to scan in any of the three forms."""

    api: Api
    endpoint: Endpoint[Any, T]
    resolve: Callable[[], Awaitable[Resolved[T]]]
    options: ScanOptions
    #: With ``checkpoint=``: the checkpoint, and the listing it belongs to.
    checkpoint: Checkpoint | None = None
    listing: str = ""

    def __post_init__(self) -> None:
        # Bad arguments raise at the call, not when the scan starts.
        check_style(self.options, self.endpoint.style)
        if self.checkpoint is not None:
            resume_from(self.checkpoint, self.options, self.listing, self.endpoint.style)

    def _start(self, spawn: Spawner) -> PageIterator[T]:
        opts, cp = self.options, self.checkpoint
        if cp is not None:
            # Read when the scan starts: acks until then move the watermark.
            opts = resume_from(cp, opts, self.listing, self.endpoint.style)
        last_total = None if cp is None else cp._total
        pages = start_scan(
            self.endpoint, self.resolve, opts, self.api, spawn, last_total=last_total
        )
        pages.count(self.api.counters)
        hooks = self.api.hooks
        if hooks is not None:
            pages.observe(hooks, "scan", path_template(self.endpoint.path))
        if cp is not None:
            pages.tap = cp._tap(
                self.listing,
                self.endpoint.style,
                self.endpoint.key,
                start_token=opts.start_token,
                whole=opts.max_items is None,
            )
        return pages

    def start_offset(self) -> int:
        """Where a scan would start now (the checkpoint's watermark, if any)."""
        cp = self.checkpoint
        if cp is None:
            return self.options.start_offset
        return resume_from(cp, self.options, self.listing, self.endpoint.style).start_offset

    def pages(self) -> PageIterator[T]:
        return self._start(self.api.spawn)

    def items(self) -> ItemIterator[T]:
        return items_of(self.pages())

    def scan(self) -> Scan[T]:
        return Scan(self._start)

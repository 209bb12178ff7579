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
from typing import Any, Generic, Literal, TypeVar

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
from ._requester import Api

__all__ = ["Declared", "check_style", "fixed", "options_of"]

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

    def __post_init__(self) -> None:
        check_style(self.options, self.endpoint.style)

    def _start(self, spawn: Spawner) -> PageIterator[T]:
        return start_scan(self.endpoint, self.resolve, self.options, self.api, spawn)

    def pages(self) -> PageIterator[T]:
        return self._start(self.api.spawn)

    def items(self) -> ItemIterator[T]:
        return items_of(self.pages())

    def scan(self) -> Scan[T]:
        return Scan(self._start)

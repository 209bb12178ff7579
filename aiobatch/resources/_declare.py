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
from typing import Any, Generic, TypeVar

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
from ..events import path_template
from ._requester import Api

__all__ = ["Declared", "fixed", "options_of"]

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

    def _start(self, spawn: Spawner) -> PageIterator[T]:
        pages = start_scan(self.endpoint, self.resolve, self.options, self.api, spawn)
        hooks = self.api.hooks
        if hooks is not None:
            pages.observe(hooks, "scan", path_template(self.endpoint.path))
        return pages

    def pages(self) -> PageIterator[T]:
        return self._start(self.api.spawn)

    def items(self) -> ItemIterator[T]:
        return ItemIterator(self.pages())

    def scan(self) -> Scan[T]:
        return Scan(self._start)

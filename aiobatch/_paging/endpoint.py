"""A paged endpoint, as data, and the one-attempt page fetch built from it.

A resource declares *what* an endpoint is (path, page model, where the items,
total and next token are, what identifies an item); the engine decides *how*
to walk it (``offset`` pages planned concurrently, or ``cursor`` pages in
sequence) and wraps each attempt in the retry policy and the scan's limiter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from .._retry import RetryPolicy
from .types import ScanOptions

__all__ = ["Endpoint", "Fetched", "Requester", "Send"]

P = TypeVar("P")
T = TypeVar("T")


def _no_total(page: Any) -> int | None:
    return None


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """One page as the server returned it."""

    items: Sequence[T]
    total: int | None
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[P, T]):
    """A paged ``GET`` endpoint.

    ``next_token`` set means cursor pagination (send ``token_param``, stop when
    the page carries no token); otherwise offset pagination with a total.
    """

    path: str
    page: type[P]
    items: Callable[[P], Sequence[T]]
    key: Callable[[T], str]
    total: Callable[[P], int | None] = _no_total
    next_token: Callable[[P], str | None] | None = None
    limit_param: str = "limit"
    offset_param: str = "offset"
    token_param: str = "page_token"
    #: Scan options of this listing when the caller gives none.
    defaults: ScanOptions = field(default_factory=ScanOptions)

    @property
    def style(self) -> Literal["offset", "cursor"]:
        return "offset" if self.next_token is None else "cursor"

    def by_offset(
        self, send: Send, query: Mapping[str, str]
    ) -> Callable[[int, int], Awaitable[Fetched[T]]]:
        """One attempt at the page ``(offset, limit)``."""
        path, model, items, total = self.path, self.page, self.items, self.total
        off, lim = self.offset_param, self.limit_param
        base = dict(query)

        async def fetch(offset: int, limit: int) -> Fetched[T]:
            page = await send(model, path, {**base, off: str(offset), lim: str(limit)})
            return Fetched(items(page), total(page))

        return fetch

    def by_token(
        self, send: Send, query: Mapping[str, str]
    ) -> Callable[[str | None, int], Awaitable[Fetched[T]]]:
        """One attempt at the page after ``token`` (None: the first page)."""
        assert self.next_token is not None
        path, model, items, total, token_of = (
            self.path,
            self.page,
            self.items,
            self.total,
            self.next_token,
        )
        tok, lim = self.token_param, self.limit_param
        base = dict(query)

        async def fetch(token: str | None, limit: int) -> Fetched[T]:
            params = {**base, lim: str(limit)}
            if token is not None:
                params[tok] = token
            page = await send(model, path, params)
            return Fetched(items(page), total(page), token_of(page) or None)

        return fetch


class Send(Protocol):
    """One attempt at ``GET path?params``, decoded into ``model`` (no retries)."""

    def __call__(self, model: type[P], path: str, params: Mapping[str, str]) -> Awaitable[P]: ...


class Requester(Protocol):
    """What the engine needs from the client: one attempt, the retry policy,
    and a task group for plain ``async for`` scans."""

    @property
    def policy(self) -> RetryPolicy: ...

    @property
    def send(self) -> Send: ...

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None: ...

"""What a resource needs from the client: one narrow, private seam."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import IO, Protocol, TypeVar

from .._paging.types import ScanOptions
from .._protocol import Params, Query
from .._retry import RetryPolicy
from .._stats import Counters
from ..events import Hooks
from ._sizes import KnownSizes

T = TypeVar("T")


class Api(Protocol):
    """The client as resources (and the engine) see it."""

    @property
    def policy(self) -> RetryPolicy: ...

    @property
    def scan_defaults(self) -> ScanOptions:
        """Item scans' default options (the environment's page size, concurrency)."""
        ...

    @property
    def hooks(self) -> Hooks | None:
        """The client's event hooks, or None when nothing listens."""
        ...

    @property
    def counters(self) -> Counters:
        """The client's ``stats()`` counters (what its consumers received)."""
        ...

    @property
    def sizes(self) -> KnownSizes:
        """Listing lengths the client has seen (to plan a scan's first wave)."""
        ...

    def scope(self, organization_id: str | None, project_id: str | None) -> Params:
        """Query parameters every endpoint takes (call arguments win over the client's)."""
        ...

    async def call(
        self,
        model: type[T],
        method: str,
        path: str,
        *,
        params: Query,
        body: bytes | None = None,
        idempotent: bool = True,
    ) -> T:
        """One request, retried by the client's policy."""
        ...

    def send(self, model: type[T], path: str, params: Query) -> Awaitable[T]:
        """One attempt at a GET (the engine retries it)."""
        ...

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Start a plain ``async for`` scan in the client's task group."""
        ...

    def redact(self, text: str) -> str:
        """``text`` with the API key masked (a server may echo it in any field)."""
        ...

    def download(self, url: str, sink: IO[bytes]) -> Awaitable[int]:
        """One attempt at a presigned object-storage URL, streamed into ``sink``."""
        ...

from __future__ import annotations

from typing import Protocol, TypeVar

from .._paging import Spawner
from .._protocol import Params
from .._retry import RetryHooks, RetryPolicy

T = TypeVar("T")


class Requester(Protocol):
    """What a resource needs from the client: scoped params and one retried request."""

    @property
    def retry_policy(self) -> RetryPolicy: ...

    @property
    def spawn(self) -> Spawner:
        """Start a background task in the client's task group (scans run there)."""
        ...

    def scope(self, organization_id: str | None, project_id: str | None) -> Params: ...

    async def request(
        self,
        model: type[T],
        method: str,
        path: str,
        *,
        params: Params,
        body: bytes | None = None,
        idempotent: bool = True,
        hooks: RetryHooks | None = None,
    ) -> T: ...

"""``client.stats()``: the client's own counters, as a plain snapshot.

The counters are bumped inline on the request path (a few integer additions per
request, no allocation), so they cost nothing worth measuring and need no hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._budget import RequestBudget

__all__ = ["ClientStats", "Counters"]


@dataclass(frozen=True, slots=True)
class ClientStats:
    """What the client did since it was created.

    ``requests`` counts attempts (a retry is a request too), ``retries`` the
    attempts that were retries, ``responses`` the answers by status code,
    ``errors`` the attempts that got no answer, by error type; ``bytes_received``
    the (decoded) body bytes read.  ``in_flight`` and ``concurrency_limit`` are
    the moment's values.

    What reached the consumer (``aiobatch.otel``'s ``aiobatch.pages``,
    ``aiobatch.items``, ``aiobatch.bytes`` and ``aiobatch.results.failed``):
    ``pages`` and ``items`` of every listing scan (an item iterator's items are
    added as it takes its next page and when it ends), ``results`` of every
    results stream, their content ``bytes_delivered``, and ``results_failed`` by
    ``ItemError`` kind."""

    requests: int
    retries: int
    rate_limited: int
    in_flight: int
    bytes_received: int
    responses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    concurrency_limit: int = 0
    pages: int = 0
    items: int = 0
    results: int = 0
    bytes_delivered: int = 0
    results_failed: dict[str, int] = field(default_factory=dict)


class Counters:
    """What the budget does not count already (it counts requests and 429s)."""

    __slots__ = (
        "bytes_delivered",
        "bytes_received",
        "errors",
        "items",
        "pages",
        "responses",
        "results",
        "results_failed",
        "retries",
    )

    def __init__(self) -> None:
        self.retries = 0
        self.bytes_received = 0
        self.responses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.pages = 0
        self.items = 0
        self.results = 0
        self.bytes_delivered = 0
        self.results_failed: dict[str, int] = {}

    def count_response(self, status: int, size: int) -> None:
        responses = self.responses
        responses[status] = responses.get(status, 0) + 1
        self.bytes_received += size

    def count_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def count_result(self, size: int, error: str | None) -> None:
        self.results += 1
        if error is None:
            self.bytes_delivered += size
        else:
            self.results_failed[error] = self.results_failed.get(error, 0) + 1

    def snapshot(self, budget: RequestBudget) -> ClientStats:
        return ClientStats(
            requests=budget.requests,
            retries=self.retries,
            rate_limited=budget.rate_limited,
            in_flight=budget.in_flight,
            bytes_received=self.bytes_received,
            responses=dict(self.responses),
            errors=dict(self.errors),
            concurrency_limit=budget.limit,
            pages=self.pages,
            items=self.items,
            results=self.results,
            bytes_delivered=self.bytes_delivered,
            results_failed=dict(self.results_failed),
        )

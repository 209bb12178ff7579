"""A model server of the two listings a scan walks, written apart from
``aiobatch.testing`` (nothing imported from it: its own code, its own idea of
the truth), so the client is not tested only against its own simulator.

* ``GET /api/v1/beta/batch-processing/{job}/items?limit&offset``: offset pages
  with a ``total_size``;
* ``GET /api/v2/batches?page_size&page_token``: cursor pages, no total.

What the server does wrong is a ``Behaviour`` (drawn by Hypothesis in
``test_property``).  Faults are keyed by what was asked (the offset or the page's
position, and how often it was asked), never by arrival order, so an example
replays the same way whatever the scan's concurrency does.  Time is the test's
``Clock``, which the client's injected sleep moves: a blip lasts so many
seconds of it, and nothing waits for real.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

ITEMS_PATH = "/api/v1/beta/batch-processing/{job}/items"
BATCHES_PATH = "/api/v2/batches"
JOB = "bjb-model"

#: How a rate limit or an outage says when to come back.
RetryAfter = Literal["none", "zero", "seconds", "decimal", "date", "ms", "garbage", "negative"]
FaultKind = Literal["429", "500", "502", "503", "empty", "stale", "error200"]
Total = Literal["exact", "absent", "low", "high", "moving"]


class Clock:
    """The test's time: the client's sleep moves it, the server reads it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(0.0, delay)
        await asyncio.sleep(0)


@dataclass(frozen=True)
class Fault:
    """Answer the ``times`` first asks of one position wrongly."""

    kind: FaultKind
    times: int = 1
    retry_after: RetryAfter = "none"


@dataclass(frozen=True)
class Behaviour:
    """What the server does.  ``n`` items at the start; offsets and page
    positions in ``faults`` are where the fault sits."""

    n: int
    cursor: bool = False
    #: Silent cap on the page size.
    cap: int | None = None
    #: Items sent beyond the page size asked for (cursor: they belong to the page).
    over: int = 0
    total: Total = "exact"
    total_delta: int = 0
    faults: dict[int, Fault] = field(default_factory=dict)
    #: Empty answers at this offset (or page) for this many seconds of the clock.
    blip: tuple[int, float] | None = None
    #: Offsets past the end answer with the last page again.
    clamp: bool = False
    #: The last page takes a little real time (it arrives after the others).
    slow_last: bool = False
    #: Items appended at the end once this offset (or page) was asked for.
    grow: tuple[int, int] | None = None
    #: Items removed from the front once this offset was asked for.
    shrink: tuple[int, int] | None = None
    #: Cursor: every token carries a fresh nonce (same position, new text).
    salted: bool = False
    #: Cursor: the page at this position names the token of the first page again.
    loop_at: int | None = None
    #: Cursor: token length (a server may send huge tokens).
    token_len: int = 8


@dataclass
class Model:
    """The server's state: its truth, and what it was asked."""

    b: Behaviour
    clock: Clock
    ids: list[str] = field(default_factory=list)
    asked: Counter[int] = field(default_factory=Counter)
    blip_started: float | None = None
    grown: bool = False
    shrunk: bool = False
    nonce: int = 0
    requests: int = 0
    #: Every id the listing ever held, in order (what it grew to).
    created: list[str] = field(default_factory=list)
    #: Where a resumed scan without memory starts: answered without a stale page.
    honest: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.ids = [self.make_id(i) for i in range(self.b.n)]
        self.created = list(self.ids)

    def make_id(self, i: int) -> str:
        return f"{'bat' if self.b.cursor else 'itm'}-{i:05d}"

    # --- what moves the truth ----------------------------------------------------------

    def _move(self, where: int) -> None:
        b = self.b
        if b.grow is not None and not self.grown and where >= b.grow[0]:
            self.grown = True
            start = len(self.created)
            new = [self.make_id(start + i) for i in range(b.grow[1])]
            self.created += new
            self.ids += new
        if b.shrink is not None and not self.shrunk and where >= b.shrink[0]:
            self.shrunk = True
            del self.ids[: b.shrink[1]]

    def _total(self, where: int) -> int | None:
        b, n = self.b, len(self.ids)
        if b.total == "absent":
            return None
        if b.total == "low":
            return max(0, n - b.total_delta)
        if b.total == "high":
            return n + b.total_delta
        if b.total == "moving":
            return max(0, n + (self.asked[where] % 3 - 1) * b.total_delta)
        return n

    # --- answers -----------------------------------------------------------------------

    def fault(self, where: int) -> web.Response | Literal["empty", "stale", "error200"] | None:
        """The fault for this ask of ``where``, if any (``asked`` already counts it)."""
        b = self.b
        if b.blip is not None and b.blip[0] == where:
            if self.blip_started is None:
                self.blip_started = self.clock.now
            if self.clock.now < self.blip_started + b.blip[1]:
                return "empty"
        f = b.faults.get(where)
        if f is None or self.asked[where] > f.times:
            return None
        if f.kind in ("empty", "stale", "error200"):
            return f.kind
        return web.json_response(
            {"detail": f"model server says {f.kind}"},
            status=int(f.kind),
            headers=self.retry_after(f.retry_after),
        )

    def retry_after(self, form: RetryAfter) -> dict[str, str]:
        later = self.clock.now + 2
        return {
            "none": {},
            "zero": {"Retry-After": "0"},
            "seconds": {"Retry-After": "2"},
            "decimal": {"Retry-After": "1.5"},
            "date": {"Retry-After": email.utils.formatdate(later, usegmt=True)},
            "ms": {"retry-after-ms": "1500"},
            "garbage": {"Retry-After": "soon, maybe"},
            "negative": {"Retry-After": "-3"},
        }[form]

    async def items(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        q = request.query
        limit, offset = int(q.get("limit", "100")), int(q.get("offset", "0"))
        self.asked[offset] += 1
        self._move(offset)
        total = self._total(offset)
        fault = self.fault(offset)
        if isinstance(fault, web.Response):
            return fault
        if fault == "error200":
            return web.json_response({"detail": "temporarily unavailable"})
        if fault == "stale" and offset in self.honest:
            fault = None  # nothing can tell it from data: the resume point's page
        self.honest.discard(offset)
        size = min(limit, self.b.cap) if self.b.cap else limit
        size += self.b.over
        start = offset
        if fault == "stale":
            start = max(0, offset - size)
        elif self.b.clamp and offset >= len(self.ids) > 0:
            start = max(0, len(self.ids) - size)
        page = [] if fault == "empty" else self.ids[start : start + size]
        if self.b.slow_last and page and start + size >= len(self.ids):
            await asyncio.sleep(0.005)
        body: dict[str, Any] = {
            "items": [{"item_id": i, "item_name": f"{i}.pdf", "status": "completed"} for i in page]
        }
        if total is not None:
            body["total_size"] = total
        return web.json_response(body)

    # --- cursor ------------------------------------------------------------------------

    def token(self, pos: int) -> str:
        self.nonce += 1
        salt = f".{self.nonce}" if self.b.salted else ""
        return f"p{pos}{salt}".ljust(self.b.token_len, "~")

    @staticmethod
    def position(token: str | None) -> int:
        if token is None:
            return 0
        return int(token[1:].rstrip("~").split(".")[0])

    async def batches(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        q = request.query
        size, pos = int(q.get("page_size", "100")), self.position(q.get("page_token"))
        self.asked[pos] += 1
        self._move(pos)
        fault = self.fault(pos)
        if isinstance(fault, web.Response):
            return fault
        if fault == "error200":
            return web.json_response({"detail": "temporarily unavailable"})
        size = (min(size, self.b.cap) if self.b.cap else size) + self.b.over
        page = [] if fault == "empty" else self.ids[pos : pos + size]
        end = pos + len(page)
        nxt: str | None = self.token(end) if end < len(self.ids) else None
        if self.b.loop_at is not None and pos >= self.b.loop_at and nxt is not None:
            nxt = self.token(0)
        return web.json_response({"items": [batch(i) for i in page], "next_page_token": nxt})


def batch(batch_id: str) -> dict[str, Any]:
    return {
        "id": batch_id,
        "config": {"job": {"type": "parse_v2", "configuration_id": "cfg-model"}},
        "project_id": "prj-model",
        "source_directory_id": "dir-model",
        "status": "COMPLETED",
    }


def app(model: Model) -> web.Application:
    application = web.Application()
    application.router.add_get(ITEMS_PATH, model.items)
    application.router.add_get(BATCHES_PATH, model.batches)
    return application

"""A small hostile listing server for issue 20's cases, written apart from the
simulator (its own code, its own idea of the truth), on a real socket.

``CursorServer`` serves ``GET /api/v2/batches`` (token pages); ``OffsetServer``
serves a job's items (``offset`` / ``limit`` pages with a ``total_size``).
Each misbehaves only in the ways a test switches on.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from _servers import serve
from aiohttp import web
from faults.fault_support import VirtualClock

from aiobatch import BatchClient

JOB = "bjb-edge"
ITEMS_PATH = f"/api/v1/beta/batch-processing/{JOB}/items"


def batch(i: int) -> dict[str, Any]:
    return {
        "id": f"bat-{i:05d}",
        "config": {"job": {"type": "parse_v2", "configuration_id": "cfg"}},
        "project_id": "p",
        "source_directory_id": "dir",
        "status": "COMPLETED",
    }


def item(i: int) -> dict[str, Any]:
    return {"item_id": f"itm-{i:05d}", "item_name": f"f{i}.pdf", "status": "completed"}


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body), content_type="application/json")


@dataclass
class CursorServer:
    """``n`` batches; a token is ``"<position>:<padding>"``.

    ``per_page``: items per page whatever ``page_size`` says (None: honour it);
    ``cycle``: positions wrap around every ``cycle`` items while tokens keep
    changing (a listing that repeats forever, up to ``n`` positions);
    ``pad``: characters of padding in every token; ``repeat_token_at``: the
    page at this position hands out the first token again.
    """

    n: int
    per_page: int | None = None
    cycle: int | None = None
    pad: int = 0
    repeat_token_at: int | None = None
    fail_from: int | None = None  #: positions at or after it answer 503 ...
    fail_detail: str = "unavailable"  #: ... with this detail
    requests: list[dict[str, str]] = field(default_factory=list)

    def token(self, pos: int) -> str:
        return f"{pos}:{'x' * self.pad}"

    async def handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append({k: v[:40] for k, v in query.items()})  # not the padding
        pos = int(query["page_token"].split(":")[0]) if "page_token" in query else 0
        if self.fail_from is not None and pos >= self.fail_from:
            return _json({"detail": self.fail_detail}, 503)
        size = self.per_page or int(query["page_size"])
        stop = min(self.n, pos + size)
        ids = [p % self.cycle if self.cycle else p for p in range(pos, stop)]
        nxt: str | None = self.token(stop) if stop < self.n else None
        if self.repeat_token_at is not None and pos >= self.repeat_token_at and nxt:
            nxt = self.token(size)
        return _json({"items": [batch(i) for i in ids], "next_page_token": nxt})

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[str]:
        # Room for request lines as long as the tokens a test hands out.
        app = web.Application(handler_args={"max_line_size": 1 << 22, "max_field_size": 1 << 22})
        app.router.add_get("/api/v2/batches", self.handle)
        async with serve(app) as url:
            yield url


#: ``(offset, limit, answers so far at that offset) -> a JSON body, a status
#: and body, or None (serve the page as it is)``.
Override = Callable[[int, int, int], "dict[str, Any] | tuple[int, dict[str, Any]] | None"]


@dataclass
class OffsetServer:
    """A job's ``n`` items behind ``offset`` / ``limit``; ``total`` is what it
    claims (default: the truth); ``override`` replaces chosen answers."""

    n: int
    total: Callable[[], int | None] | None = None
    override: Override | None = None
    #: Called with each request before it is answered (a hook for moving data).
    on_request: Callable[[int, int], None] | None = None
    ids: list[int] = field(default_factory=list)
    requests: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ids = list(range(self.n))

    async def handle(self, request: web.Request) -> web.Response:
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        asked = sum(1 for o, _ in self.requests if o == offset)
        self.requests.append((offset, limit))
        if self.on_request is not None:
            self.on_request(offset, limit)
        if self.override is not None:
            special = self.override(offset, limit, asked)
            if isinstance(special, tuple):
                return _json(special[1], special[0])
            if special is not None:
                return _json(special)
        total = len(self.ids) if self.total is None else self.total()
        page = [item(i) for i in self.ids[offset : offset + limit]]
        return _json({"items": page, "total_size": total})

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_get(ITEMS_PATH, self.handle)
        async with serve(app) as url:
            yield url


class Clock(VirtualClock):
    """The retry policy's clock (``sleep`` moves it forward, never waits), and a
    client on it."""

    def client(self, url: str, **kw: Any) -> BatchClient:
        return BatchClient(api_key="llx-edge-secret", base_url=url, retry=self.policy(**kw))

"""A hostile job-create server, written apart from the simulator.

It serves just what ``jobs retry-failed`` needs (a finished source job's items
and processing results, the jobs listing newest first, one job's items) and
fails creates the way real servers do, each by a scripted ``Fail``:

* ``error_after`` / ``error_before``: a status (5xx) after making the job, or
  without making it;
* ``hang_after`` / ``hang_before``: no answer at all (the client times out);
* ``reset_after`` / ``reset_before``: the connection is dropped, after making
  the job or without making it;
* ``garbled_after``: the job is made, and the 201 that says so cannot be read;
* ``block_after`` / ``block_before``: ``blocked`` is set, after making the
  job or without making it, and the answer never comes (the test interrupts
  the client there).

It keeps its own record of the jobs it made (``created``) to check the client
against, and of whose items were read (``item_reads``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from _servers import serve
from aiohttp import web

ROOT = "/api/v1/beta/batch-processing"
#: As the original job had it: fields the client does not know, nulls, odd text.
CONFIG = {
    "type": "parse",
    "parameters": {"tier": "agentic", "future_knob": [1, None, {"\u00e9": "a\u2028b"}]},
    "webhook": None,
}
FAILS = (
    "error_after",
    "error_before",
    "hang_after",
    "hang_before",
    "reset_after",
    "block_after",
    "garbled_after",
    "reset_before",
    "block_before",
)


@dataclass
class Job:
    id: str
    item_ids: list[str]
    created_at: float
    directory_id: str | None = None
    #: Listed, but its items answer 404.
    unreadable: bool = False

    def doc(self, status: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "job_type": "parse",
            "project_id": "prj-hostile",
            "status": status,
            "total_items": len(self.item_ids),
            "directory_id": self.directory_id,
            "created_at": datetime.fromtimestamp(self.created_at, UTC).isoformat(),
        }


@dataclass
class CreateServer:
    """``source``: the job whose items failed; ``statuses[i]`` of item ``i``."""

    clock: Callable[[], float]
    source: str = "bjb-hostile-src"
    statuses: list[str] = field(default_factory=list)
    #: Item ids by index (default ``dfl-00000``...): hostile ids are welcome.
    ids: list[str] = field(default_factory=list)
    #: What the next creates do, in order ("ok" when the script is used up).
    script: list[str] = field(default_factory=list)
    error_status: int = 503
    created: list[Job] = field(default_factory=list)
    old: list[Job] = field(default_factory=list)
    item_reads: list[str] = field(default_factory=list)
    #: The ``limit`` of each of those reads.
    item_limits: list[int] = field(default_factory=list)
    #: Every create's body, as received.
    bodies: list[dict[str, Any]] = field(default_factory=list)
    blocked: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set on shutdown: hanging answers end (the clients are gone by then).
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    #: The listing's order (not published: a client must not depend on it).
    newest_first: bool = True
    #: The base URL, once ``running``.
    url: str = ""

    def item_id(self, index: int) -> str:
        return self.ids[index] if self.ids else f"dfl-{index:05d}"

    def failed(self) -> list[str]:
        return [self.item_id(i) for i, s in enumerate(self.statuses) if s == "failed"]

    def add_old_jobs(self, count: int, size: int, age: float) -> None:
        """Jobs made long before (``age`` s) that look like a chunk by their size."""
        for n in range(count):
            ids = [f"old-{n}-{i}" for i in range(size)]
            self.old.append(Job(f"bjb-old-{n:04d}", ids, self.clock() - age - n))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(ROOT, self.list_jobs)
        app.router.add_post(ROOT, self.create)
        app.router.add_get(ROOT + "/items/{item_id}/processing-results", self.results)
        app.router.add_get(ROOT + "/{job_id}", self.get_job)
        app.router.add_get(ROOT + "/{job_id}/items", self.items)
        return app

    # --- reads ---

    def _jobs(self) -> list[Job]:
        source = Job(self.source, [self.item_id(i) for i in range(len(self.statuses))], 0.0)
        jobs = [source, *self.old, *self.created]
        return sorted(jobs, key=lambda j: j.created_at, reverse=self.newest_first)

    def _find(self, job_id: str) -> Job:
        for job in self._jobs():
            if job.id == job_id:
                return job
        raise web.HTTPNotFound(text=json.dumps({"detail": "Job not found"}))

    async def list_jobs(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "50"))
        offset = int(request.query.get("offset", "0"))
        jobs = self._jobs()
        page = [j.doc("completed" if j.id == self.source else "pending") for j in jobs]
        body = {"items": page[offset : offset + limit], "total_size": len(jobs)}
        return web.json_response(body)

    async def get_job(self, request: web.Request) -> web.Response:
        job = self._find(request.match_info["job_id"])
        status = "completed" if job.id == self.source else "pending"
        return web.json_response({"job": job.doc(status), "progress_percentage": 100.0})

    async def items(self, request: web.Request) -> web.Response:
        job = self._find(request.match_info["job_id"])
        self.item_reads.append(job.id)
        limit = int(request.query.get("limit", "100"))
        self.item_limits.append(limit)
        if job.unreadable:
            raise web.HTTPNotFound(text=json.dumps({"detail": "Job not found"}))
        offset = int(request.query.get("offset", "0"))
        wanted = request.query.get("status")
        if job.id == self.source:
            rows = [(i, s) for i, s in zip(job.item_ids, self.statuses, strict=True)]
        else:
            rows = [(i, "pending") for i in job.item_ids]
        rows = [r for r in rows if wanted is None or r[1] == wanted]
        docs = [{"item_id": i, "item_name": f"{i}.pdf", "status": s} for i, s in rows]
        body = {"items": docs[offset : offset + limit], "total_size": len(docs)}
        return web.json_response(body)

    async def results(self, request: web.Request) -> web.Response:
        item_id = request.match_info["item_id"]
        result = {
            "item_id": item_id,
            "job_config": CONFIG,
            "job_type": "parse",
            "output_s3_path": f"s3://bucket/{len(item_id)}",
            "parameters_hash": "h",
            "processed_at": "2026-01-01T00:00:00Z",
            "result_id": "res-1",
        }
        body = {"item_id": item_id, "item_name": f"{item_id}.pdf", "processing_results": [result]}
        return web.json_response(body)

    # --- the create, and its failures ---

    def _make(self, item_ids: list[str]) -> Job:
        digest = hashlib.blake2b(f"{len(self.created)}".encode(), digest_size=6).hexdigest()
        job = Job(f"bjb-new-{digest}", item_ids, self.clock())
        self.created.append(job)
        return job

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        item_ids = list(body["item_ids"])
        fail = self.script.pop(0) if self.script else "ok"
        if fail.endswith("_after") or fail == "ok":
            job = self._make(item_ids)
        if fail == "ok":
            return web.json_response(job.doc("pending"), status=201)
        if fail in ("error_after", "error_before"):
            detail = {"detail": "upstream timed out"}
            return web.json_response(detail, status=self.error_status)
        if fail == "garbled_after":
            return web.Response(status=201, text='{"id": "bjb-', content_type="application/json")
        if fail in ("reset_after", "reset_before"):
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fail.startswith("block_"):
            self.blocked.set()
        await self.stop.wait()  # hang_* / block_*: no answer while a client waits
        return web.json_response({"detail": "shutting down"}, status=503)

    def per_item(self) -> dict[str, int]:
        """How many jobs this server made hold each item."""
        counts: dict[str, int] = {}
        for job in self.created:
            for item_id in job.item_ids:
                counts[item_id] = counts.get(item_id, 0) + 1
        return counts


@contextlib.asynccontextmanager
async def running(server: CreateServer) -> AsyncIterator[str]:
    """Serve ``server`` on 127.0.0.1; its base URL."""
    async with serve(server.app()) as url:
        server.url = url
        try:
            yield url
        finally:
            server.stop.set()

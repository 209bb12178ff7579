"""A small server that behaves as the published contract says, written apart from
the simulator (``../shared/reference/``, the official SDK's types): where the two
disagree, this one is right.

* FastAPI does not split commas: an array query parameter is read with
  ``getall``, and ``expand=a,b`` is one unknown value (422).
* ``fast``-tier parse jobs refuse markdown, markdown_full and items (400).
* a v2 batch's ``results`` may be null for a while after it reached a final status.
* classify results are one answer (no paging parameters), yet the generic list
  envelope may carry a ``next_page_token``.
* v1 parse jobs carry ``error_code`` / ``error_message``; a result of a job that
  has not finished is a 404, as is one that does not exist.
* v1 create answers 201.

Every request is recorded (method, path, query as pairs, headers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PROJECT = "prj-contract"
PARSE_EXPANDS = frozenset(
    {
        "markdown_full",
        "text_full",
        "markdown",
        "text",
        "items",
        "metadata",
        "forms",
        "job_metadata",
        "usage",
        "markdown_content_metadata",
        "text_content_metadata",
        "items_content_metadata",
        "markdown_full_content_metadata",
        "text_full_content_metadata",
    }
)
FAST_REFUSED = frozenset({"markdown", "markdown_full", "items"})


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]


@dataclass
class ParseV1:
    status: str = "SUCCESS"
    error_code: str | None = None
    error_message: str | None = None
    markdown: str = "# doc"
    #: SUCCESS, yet its result is gone (404): "missing"
    result_missing: bool = False


@dataclass
class Contract:
    #: v2 parse job id -> (tier, markdown)
    v2_jobs: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: GETs of a finished batch still answered with ``results: null``
    null_results_for: int = 0
    batch_status: str = "COMPLETED"
    #: v1 job type and its items' jobs (parse: ParseV1; classify: its status)
    v1_type: str = "parse"
    v1_parse: dict[str, ParseV1] = field(default_factory=dict)
    classify: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    #: v2 parse jobs whose markdown lives in object storage: "big" (sent inline
    #: too, over the client's cap) or "empty" (nothing inline); their URLs point
    #: at ``storage_url`` (a second listener), the first one expired if asked.
    stored: dict[str, str] = field(default_factory=dict)
    storage_url: str = ""
    expire_first: bool = False
    signed: int = 0

    def paths(self, prefix: str = "") -> list[str]:
        return [s.path for s in self.seen if s.path.startswith(prefix)]


def _err(status: int, detail: Any) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def _enum_422(name: str, value: str) -> web.Response:
    return _err(
        422,
        [{"loc": ["query", name], "msg": "Input should be a known value", "input": value}],
    )


def app(state: Contract) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        state.seen.append(
            Seen(
                request.method,
                request.path,
                list(request.query.items()),
                dict(request.headers),
                list(request.headers.items()),
            )
        )
        resp: web.StreamResponse = await handler(request)
        return resp

    @routes.get("/api/v2/parse/{job_id}")
    async def parse_v2(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if job_id not in state.v2_jobs:
            return _err(404, f"Parse job {job_id} not found")
        tier, markdown = state.v2_jobs[job_id]
        expand = request.query.getall("expand", [])
        for value in expand:
            if value not in PARSE_EXPANDS:
                return _enum_422("expand", value)
        if tier == "fast" and FAST_REFUSED & set(expand):
            return _err(400, "Markdown expansion is not available for FAST tier jobs.")
        job = {"id": job_id, "project_id": PROJECT, "status": "COMPLETED", "tier": tier}
        body: dict[str, Any] = {"job": job}
        if any(e.endswith("_content_metadata") for e in expand):
            state.signed += 1
            url = f"{state.storage_url}/obj/{job_id}?X-Amz-Signature=v{state.signed}"
            size = len(markdown.encode())
            body["result_content_metadata"] = {
                "md": {"size_bytes": size, "exists": True, "presigned_url": url},
                "json": {"size_bytes": 0, "exists": False, "presigned_url": None},
            }
        if "markdown_full" in expand and state.stored.get(job_id) != "empty":
            body["markdown_full"] = markdown
        if "text_full" in expand:
            body["text_full"] = markdown.replace("#", "")
        if "job_metadata" in expand:
            body["job_metadata"] = {"job_pages": 1}
        return web.json_response(body)

    @routes.get("/api/v2/batches/{batch_id}")
    async def get_batch(request: web.Request) -> web.Response:
        batch_id = request.match_info["batch_id"]
        results: list[dict[str, Any]] | None = [
            {
                "source_directory_file_id": f"dfl-{n}",
                "job_reference": {"type": "parse_v2", "id": job_id},
                "error_message": None,
            }
            for n, job_id in enumerate(state.v2_jobs)
        ]
        if "results" in request.query.getall("expand", []) and state.null_results_for > 0:
            state.null_results_for -= 1
            results = None
        body = {
            "id": batch_id,
            "config": {"job": {"type": "parse_v2", "configuration_id": "cfg-1"}},
            "project_id": PROJECT,
            "source_directory_id": "dir-1",
            "status": state.batch_status,
            "results": results,
        }
        return web.json_response(body)

    @routes.get("/api/v1/beta/batch-processing/{job_id}")
    async def job_status(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        total = len(state.v1_parse) + len(state.classify)
        job = {
            "id": job_id,
            "job_type": state.v1_type,
            "project_id": PROJECT,
            "status": "completed",
            "total_items": total,
        }
        return web.json_response({"job": job, "progress_percentage": 100.0})

    @routes.get("/api/v1/beta/batch-processing/{job_id}/items")
    async def items(request: web.Request) -> web.Response:
        jobs = list(state.v1_parse) if state.v1_type == "parse" else list(state.classify)
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", "100"))
        rows = [
            {"item_id": f"dfl-{n}", "item_name": f"f{n}.pdf", "status": "completed", "job_id": j}
            for n, j in enumerate(jobs)
        ][offset : offset + limit]
        return web.json_response({"items": rows, "total_size": len(jobs)})

    @routes.get("/api/v1/parsing/job/{job_id}")
    async def parse_v1_status(request: web.Request) -> web.Response:
        job = state.v1_parse.get(request.match_info["job_id"])
        if job is None:
            return _err(404, "Job not found")
        return web.json_response(
            {
                "id": request.match_info["job_id"],
                "status": job.status,
                "error_code": job.error_code,
                "error_message": job.error_message,
            }
        )

    @routes.get("/api/v1/parsing/job/{job_id}/result/{kind}")
    async def parse_v1_result(request: web.Request) -> web.Response:
        job = state.v1_parse.get(request.match_info["job_id"])
        if job is None or job.status == "PENDING" or job.result_missing:
            return _err(404, "Job result not found")
        if job.status != "SUCCESS":
            return _err(400, "Job failed")
        return web.json_response({"markdown": job.markdown, "job_metadata": {"job_pages": 1}})

    @routes.get("/api/v1/classifier/jobs/{job_id}")
    async def classify_status(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if job_id not in state.classify:
            return _err(404, "Classify job not found")
        failed = state.classify[job_id] == "ERROR"
        return web.json_response(
            {
                "id": job_id,
                "project_id": PROJECT,
                "rules": [],
                "status": state.classify[job_id],
                "user_id": "usr-1",
                "error_message": "rules did not match" if failed else None,
            }
        )

    @routes.get("/api/v1/classifier/jobs/{job_id}/results")
    async def classify_results(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        rows = [
            {
                "id": f"cls-{job_id}",
                "classify_job_id": job_id,
                "file_id": "dfl-1",
                "result": {"type": "invoice", "confidence": 0.9, "reasoning": "totals"},
            }
        ]
        # The generic list envelope: a token may come back though nothing pages.
        return web.json_response({"items": rows, "next_page_token": "tok-generic"})

    @routes.post("/api/v1/beta/batch-processing")
    async def create(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        job = {
            "id": "bjb-new",
            "job_type": "parse",
            "project_id": request.query.get("project_id", PROJECT),
            "status": "pending",
            "total_items": len(body.get("item_ids") or ()),
        }
        return web.json_response(job, status=201)

    application = web.Application(middlewares=[record])
    application.add_routes(routes)
    return application


def storage(state: Contract, log: list[Seen]) -> web.Application:
    """Object storage: another listener (another host, as far as the client can
    tell), serving each stored job's markdown; it records what reached it."""

    async def obj(request: web.Request) -> web.Response:
        log.append(
            Seen(
                request.method,
                request.path,
                list(request.query.items()),
                dict(request.headers),
                list(request.headers.items()),
            )
        )
        job_id = request.match_info["job_id"]
        if state.expire_first and request.query.get("X-Amz-Signature") == "v1":
            return web.Response(
                status=403,
                text="<Error><Code>AccessDenied</Code>"
                "<Message>Request has expired</Message></Error>",
            )
        return web.Response(body=state.v2_jobs[job_id][1].encode())

    application = web.Application()
    application.router.add_get("/obj/{job_id}", obj)
    return application

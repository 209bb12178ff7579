"""The aiohttp application: routes, handlers, and the middleware that counts,
authenticates, delays and breaks requests as the current ``Faults`` say."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import msgspec
from aiohttp import web

from . import _wire
from ._data import job_object, processing_results, progress_percentage
from ._faults import PAGE_FAULTS, FaultState
from ._jobs import JOB_STATUSES, JOB_TYPES, JobState
from ._layout import STATUSES
from ._registry import Registry
from ._results import (
    PARSE_KINDS,
    Outcome,
    classify_body,
    outcome,
    parse_job_body,
    parse_result_body,
)
from ._stats import RequestRecord, Stats
from ._storage import ObjectStore
from ._validate import ApiError, Errors, create_body, page_token

__all__ = ["API", "CLASSIFIER", "PARSING", "SIM", "SimHost", "make_app"]

API = "/api/v1/beta/batch-processing"
PARSING = "/api/v1/parsing"
CLASSIFIER = "/api/v1/classifier"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encode = msgspec.json.encode
_BROKEN = frozenset({"reset", "reset_mid_body", "truncate", "chunked_cut", "unframed_cut"})
_HTML = (
    b"<!DOCTYPE html><html><head><title>Service maintenance</title></head><body>"
    b"<h1>We'll be right back</h1><p>The API is undergoing scheduled maintenance.</p>"
    b"</body></html>"
)


class SimHost(Protocol):
    """What handlers need from the simulator (kept narrow to avoid an import cycle)."""

    api_key: str | None
    #: Whether item listings carry ``total_size`` (not published either way).
    total_size: bool
    #: Whether items carry unset nullable fields as explicit ``null``.
    explicit_nulls: bool
    default_limit: int
    max_limit: int
    registry: Registry
    sleep: Callable[[float], Awaitable[None]]
    #: The second listener that serves presigned result URLs.
    storage: ObjectStore

    @property
    def stats(self) -> Stats: ...

    @property
    def fault_state(self) -> FaultState: ...


SIM = web.AppKey("aiobatch_simulator", SimHost)
#: The fault chosen for a request, when the handler itself must apply it.
FAULT = web.RequestKey("aiobatch_simulator_fault", str)


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_encode(obj), content_type="application/json", headers=headers
    )


def _state(host: SimHost, job_id: str) -> JobState:
    state = host.registry.get(job_id)
    if state is None:
        raise ApiError(404, f"Batch job {job_id} not found")
    return state


# --- handlers ---------------------------------------------------------------


class _ItemsQuery(NamedTuple):
    state: JobState
    status: str | None
    offset: int
    limit: int


def _items_query(host: SimHost, request: web.Request) -> _ItemsQuery:
    """The page an item-list request asks for, after ``page_token``,
    ``ignore_offset`` and ``cap_limit``; ``ApiError`` (422, 404) if invalid."""
    errors = Errors(request.query)
    limit = errors.integer("limit", host.default_limit, ge=1, le=host.max_limit)
    offset = errors.integer("offset", 0, ge=0)
    status = errors.choice("status", STATUSES)
    token_offset = errors.page_token()
    errors.raise_if_any()
    assert limit is not None
    assert offset is not None
    if token_offset is not None:
        offset = token_offset
    state = _state(host, request.match_info["job_id"])
    f = host.fault_state.faults
    if f.ignore_offset:
        offset = 0
    if f.cap_limit is not None:
        limit = min(limit, f.cap_limit)
    return _ItemsQuery(state, status, offset, limit)


_EMPTY_ITEMS: dict[str, bytes | None] = {"empty": b'"items":[]', "null": b'"items":null'}


async def list_items(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    state, status, offset, limit = _items_query(host, request)
    f = host.fault_state.faults
    fault = request.get(FAULT)
    view = state.view(host.registry.clock.now())
    total = view.count(status)
    if fault == "stale_page":
        offset -= limit  # reached only at offset >= limit
    if f.clamp_offset and offset >= total:
        offset = max(0, total - limit)
    fields: list[bytes] = []
    if fault == "empty_page":
        empty = _EMPTY_ITEMS.get(f.empty_style)
        if empty is not None:
            fields.append(empty)
    else:
        ties = (f.unstable_ties, host.fault_state.tie_salt()) if f.unstable_ties else None
        items, count = host.registry.items_json(
            state,
            view,
            status,
            offset,
            limit,
            unknown_every=f.unknown_status_every,
            unknown_value=f.unknown_status_value,
            extra=f.extra_fields,
            nulls=host.explicit_nulls,
            ties=ties,
        )
        fields.append(b'"items":[%s]' % items)
        if f.next_page_token and offset + count < total:
            fields.append(b'"next_page_token":"%s"' % page_token(offset + count).encode())
    if host.total_size and not f.omit_total_size:
        reported = max(0, round(total * f.total_size_factor) + f.total_size_delta)
        fields.append(b'"total_size":%d' % reported)
    if f.extra_fields:
        fields.append(b'"x_sim_page":{"offset":%d,"limit":%d},"x_sim_shard":"s3"' % (offset, limit))
    return web.Response(body=b"{%s}" % b",".join(fields), content_type="application/json")


def _extra(host: SimHost, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    if host.fault_state.faults.extra_fields:
        obj.update(fields)
    return obj


def _job(host: SimHost, state: JobState, now: float) -> dict[str, Any]:
    return _extra(host, job_object(state, state.view(now), now), x_sim_region="us-east-1")


async def get_processing_results(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    errors = Errors(request.query)
    job_type = errors.choice("job_type", JOB_TYPES)
    errors.raise_if_any()
    item_id = request.match_info["item_id"]
    found = host.registry.locate_item(item_id)
    if found is None:
        raise ApiError(404, f"Item {item_id} not found")
    state, index = found
    view = state.view(host.registry.clock.now())
    body = processing_results(state, host.registry.encoder(state), index, view, job_type)
    return _json(200, _extra(host, body, x_sim_storage_class="STANDARD"))


async def list_jobs(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    errors = Errors(request.query)
    job_type = errors.choice("job_type", JOB_TYPES)
    status = errors.choice("status", JOB_STATUSES)
    limit = errors.integer("limit", host.default_limit, ge=1, le=host.max_limit)
    offset = errors.integer("offset", 0, ge=0)
    errors.raise_if_any()
    assert limit is not None
    assert offset is not None
    directory_id = request.query.get("directory_id")
    now = host.registry.clock.now()
    jobs = [_job(host, s, now) for s in host.registry.states()]
    jobs = [
        j
        for j in jobs
        if (job_type is None or j["job_type"] == job_type)
        and (status is None or j["status"] == status)
        and (directory_id is None or j.get("directory_id") == directory_id)
    ]
    body = {"items": jobs[offset : offset + limit], "total_size": len(jobs)}
    return _json(200, _extra(host, body, x_sim_request_id="req-sim"))


async def get_job(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    state = _state(host, request.match_info["job_id"])
    now = host.registry.clock.now()
    body = {
        "job": _job(host, state, now),
        "progress_percentage": progress_percentage(state.view(now)),
    }
    return _json(200, _extra(host, body, x_sim_eta_seconds=0))


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        detail = [
            {
                "type": "json_invalid",
                "loc": ["body", 0],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": str(exc)},
            }
        ]
        raise ApiError(422, detail) from None


async def cancel_job(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    body = await _json_body(request)
    reason = body.get("reason") if isinstance(body, dict) else None
    if body is not None and (not isinstance(body, dict) or not isinstance(reason, str | None)):
        msg = "Input should be a valid string"
        raise ApiError(
            422, [{"type": "string_type", "loc": ["body", "reason"], "msg": msg, "input": reason}]
        )
    state = _state(host, request.match_info["job_id"])
    now = host.registry.clock.now()
    before = job_object(state, state.view(now), now)
    already = state.cancelled_at is not None
    finished = not already and before["status"] in ("completed", "failed")
    if finished and host.fault_state.faults.refuse_cancel_finished:
        raise ApiError(400, f"Cannot cancel batch job in status {before['status']}")
    if finished:
        # What the API answers here is not published: accept, change nothing.
        out = {
            "job_id": state.job.job_id,
            "message": f"Batch job already {before['status']}",
            "processed_items": before["processed_items"],
            "status": before["status"],
        }
        return _json(200, _extra(host, out, x_sim_cancelled_by="api"))
    host.registry.cancel(state, reason)
    after = job_object(state, state.view(now), now)
    message = "Batch job was already cancelled" if already else "Batch job cancelled"
    if reason and not already:
        message += f": {reason}"
    out = {
        "job_id": state.job.job_id,
        "message": message,
        "processed_items": after["processed_items"],
        "status": "cancelled",
    }
    return _json(200, _extra(host, out, x_sim_cancelled_by="api"))


async def create_job(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    body = create_body(await _json_body(request))
    unknown = host.registry.unknown_items(body.get("item_ids") or [])
    if unknown:
        raise ApiError(
            422,
            [
                {
                    "type": "value_error",
                    "loc": ["body", "item_ids", k],
                    "msg": "Value error, unknown or repeated item id",
                    "input": item_id,
                }
                for k, item_id in unknown[:20]
            ],
        )
    state = host.registry.create(
        body["job_config"],
        directory_id=body.get("directory_id"),
        item_ids=body.get("item_ids"),
        project_id=request.query.get("project_id"),
    )
    return _json(201, _job(host, state, host.registry.clock.now()))


# --- where items' output lives: parse jobs, classify jobs ---------------------


def _processing_job(host: SimHost, job_id: str, job_type: str) -> tuple[JobState, int, Outcome]:
    found = host.registry.locate_job(job_id)
    if found is None or found[0].job.job_type != job_type:
        raise ApiError(404, f"Job {job_id} not found")
    state, index = found
    result = outcome(state, state.view(host.registry.clock.now()), index, job_id)
    if result.status is None:
        raise ApiError(404, f"Job {job_id} not found")
    return state, index, result


async def get_parse_job(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    job_id = request.match_info["job_id"]
    _, _, result = _processing_job(host, job_id, "parse")
    return _json(200, _extra(host, parse_job_body(job_id, result.status or ""), x_sim_tier="fast"))


async def get_parse_result(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    job_id, kind = request.match_info["job_id"], request.match_info["kind"]
    if kind not in PARSE_KINDS:
        raise ApiError(404, "Not Found")
    state, index, result = _processing_job(host, job_id, "parse")
    if result.status != "SUCCESS":
        why = f": {result.error}" if result.error else ""
        raise ApiError(400, f"Job {job_id} is in status {result.status}{why}")
    name = host.registry.encoder(state).name(index)
    body = parse_result_body(job_id, name, kind, result.size)
    return web.Response(body=body, content_type="application/json")


async def get_classify_job(request: web.Request) -> web.StreamResponse:
    host = request.app[SIM]
    job_id = request.match_info["job_id"]
    state, _, result = _processing_job(host, job_id, "classify")
    body: dict[str, Any] = {
        "id": job_id,
        "project_id": state.job.project_id,
        "rules": [],
        "status": result.status,
        "user_id": "usr-sim",
        "error_message": result.error or None,
    }
    return _json(200, body)


async def get_classify_results(request: web.Request) -> web.StreamResponse:
    # One answer per job: the request takes no paging parameters (FastAPI ignores
    # unknown ones), whatever the list envelope's next_page_token suggests.
    host = request.app[SIM]
    job_id = request.match_info["job_id"]
    state, index, result = _processing_job(host, job_id, "classify")
    if result.status == "ERROR":
        raise ApiError(400, f"Classify job {job_id} failed: {result.error}")
    if result.status == "PENDING":
        return _json(200, {"items": [], "next_page_token": None, "total_size": 0})
    return _json(200, classify_body(state, index, job_id))


ENDPOINT: dict[Handler, str] = {
    list_items: "items",
    get_processing_results: "results",
    list_jobs: "jobs",
    get_job: "job",
    cancel_job: "cancel",
    create_job: "create",
    get_parse_job: "parse_job",
    get_parse_result: "parse_result",
    get_classify_job: "classify_job",
    get_classify_results: "classify_results",
}


# --- middleware -------------------------------------------------------------


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"detail": detail}, headers)


def _authorized(host: SimHost, request: web.Request) -> bool:
    if host.api_key is None:
        return True
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and key.strip() == host.api_key


def _query_offset(request: web.Request) -> int | None:
    raw = request.query.get("offset", "")
    return int(raw) if raw.isdigit() else None


def _not_reached(host: SimHost, request: web.Request, endpoint: str) -> frozenset[str]:
    """Page faults that do not apply to this request (so it does not count for them)."""
    if endpoint != "items":
        return frozenset(PAGE_FAULTS)
    try:
        query = _items_query(host, request)
    except ApiError:
        return frozenset(PAGE_FAULTS)
    return frozenset({"stale_page"}) if query.offset < query.limit else frozenset()


async def _serve(
    host: SimHost, request: web.Request, handler: Handler, record: RequestRecord
) -> tuple[web.StreamResponse, str | None]:
    if not _authorized(host, request):
        return _error(401, "Invalid API key", {"WWW-Authenticate": "Bearer"}), None
    endpoint = ENDPOINT.get(getattr(request.match_info, "handler", None))  # type: ignore[arg-type]
    faults = host.fault_state
    f = faults.faults
    fault = None
    if endpoint is not None:
        skip = (
            _not_reached(host, request, endpoint)
            if f.empty_page is not None or f.stale_page is not None
            else frozenset()
        )
        fault = faults.decide(endpoint, _query_offset(request), host.stats.in_flight, skip)
    if fault is not None:
        request[FAULT] = fault
        # Recorded now: a client that gives up (a stall, a trickle) may cancel
        # the rest of this handler.
        record.fault = fault
    delay = faults.latency()
    if delay:
        await host.sleep(delay)
    if fault == "stall":
        return await _wire.stall(request), fault
    if fault == "reset":
        _wire.reset(request)
        return _wire.gone(), fault
    if fault in ("rate_limit", "server_error"):
        headers: dict[str, str] = {}
        retry_after = f.retry_after if fault == "rate_limit" else f.error_retry_after
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if fault == "rate_limit" and f.retry_after_ms is not None:
            headers["retry-after-ms"] = f.retry_after_ms
        if f.should_retry is not None:
            headers["x-should-retry"] = f.should_retry
        if fault == "rate_limit":
            return _error(429, "Rate limit exceeded, please slow down", headers), fault
        return _error(f.error_status, "Service temporarily unavailable", headers), fault
    if fault == "html":
        return web.Response(body=_HTML, content_type="text/html"), fault
    try:
        resp = await handler(request)
    except ApiError as exc:
        resp = _error(exc.status, exc.detail, exc.headers)
    except web.HTTPException as exc:  # routing: unknown path, wrong method
        resp = _error(
            exc.status, exc.reason, {k: v for k, v in exc.headers.items() if k == "Allow"}
        )
    if fault in _BROKEN and isinstance(resp, web.Response):
        return await _wire.deliver_broken(request, fault, resp, f.cut_fraction), fault
    if fault == "trickle" and isinstance(resp, web.Response):
        record.status = resp.status  # the status line goes out first
        return await _wire.trickle(request, resp, f.trickle_bytes_per_sec, host.sleep), fault
    return resp, fault


@web.middleware
async def _simulate(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = request.app[SIM]
    stats = host.stats  # the same object ends the record, even across reset_stats()
    record = stats.begin(request.method, request.path, dict(request.query))
    try:
        resp, fault = await _serve(host, request, handler, record)
        record.fault = fault
        record.status = None if fault in ("reset", "stall") else resp.status
        return resp
    finally:
        stats.end(record)


def make_app(host: SimHost) -> web.Application:
    app = web.Application(middlewares=[_simulate])
    app[SIM] = host
    r = app.router
    r.add_get(API, list_jobs)
    r.add_post(API, create_job)
    r.add_get(API + "/items/{item_id}/processing-results", get_processing_results)
    r.add_get(API + "/{job_id}/items", list_items)
    r.add_get(API + "/{job_id}", get_job)
    r.add_post(API + "/{job_id}/cancel", cancel_job)
    r.add_get(PARSING + "/job/{job_id}", get_parse_job)
    r.add_get(PARSING + "/job/{job_id}/result/{kind}", get_parse_result)
    r.add_get(CLASSIFIER + "/jobs/{job_id}", get_classify_job)
    r.add_get(CLASSIFIER + "/jobs/{job_id}/results", get_classify_results)

    from ._batches import add_batch_routes  # v2: /api/v2/batches (it imports this module)

    add_batch_routes(app, host)
    from ._directories import add_directory_routes  # (it imports _batches)

    add_directory_routes(app)
    return app

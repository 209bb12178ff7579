"""The product jobs a v2 batch hands out (``job_reference``), in the simulator:
``GET /api/v2/parse/{job_id}`` (with ``expand=``) and ``GET /api/v2/extract/{job_id}``.

A job exists once its batch dispatched its file.  Its outcome and content are a
pure function of its id: most complete, some fail (``error_message``), a few are
missing (404, as a job the server lost or purged) — the same request always gives
the same bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ._app import SIM, SimHost, _json
from ._data import iso as _iso
from ._v2content import (
    CONTENT_OBJECTS,
    PARSE_EXPANDS,
    PARSE_INLINE,
    ParseContent,
    _hash,
    fast_tier_refusal,
    stored_object,
    usage,
)
from ._validate import ApiError, Errors

if TYPE_CHECKING:  # pragma: no cover
    from ._batches import BatchStore

__all__ = [
    "EXTRACT_EXPANDS",
    "V2_EXTRACT",
    "V2_PARSE",
    "extract_job_body",
    "job_outcome",
    "parse_job_body_v2",
    "storage_resolver",
]

V2_PARSE = "/api/v2/parse"
V2_EXTRACT = "/api/v2/extract"
EXTRACT_EXPANDS = ("configuration", "extract_metadata", "usage")
#: One job in ``FAILED_EVERY`` fails, one in ``MISSING_EVERY`` is missing (by hash).
FAILED_EVERY = 7
MISSING_EVERY = 11


def job_outcome(job_id: str) -> str:
    """``"COMPLETED"``, ``"FAILED"`` or ``"MISSING"``: fixed per job id."""
    h = _hash(job_id)
    if h % MISSING_EVERY == 3:
        return "MISSING"
    if (h // MISSING_EVERY) % FAILED_EVERY == 2:
        return "FAILED"
    return "COMPLETED"


def _error_message(job_id: str) -> str:
    return f"document could not be processed (job {job_id}): password-protected PDF"


def parse_job_body_v2(
    job_id: str,
    project_id: str,
    file_id: str,
    expand: list[str],
    *,
    tier: str = "cost_effective",
    times: tuple[str, str] | None = None,
    presign: Callable[[str], str] | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """``GET /api/v2/parse/{job_id}``: the job (every nullable field present) and
    each content ``expand`` asks for; ``presign(name)`` makes storage URLs."""
    status = job_outcome(job_id)
    failed = status == "FAILED"
    created, updated = times or (None, None)
    content = None if failed else ParseContent(job_id, file_id, size)
    job: dict[str, Any] = {
        "id": job_id,
        "project_id": project_id,
        "status": status,
        "error_message": _error_message(job_id) if failed else None,
        "name": file_id,
        "tier": tier,
        "created_at": created,
        "updated_at": updated,
        "usage": usage(content) if content is not None and "usage" in expand else None,
        "user_metadata": None,
    }
    out: dict[str, Any] = {"job": job}
    if content is None:
        return out
    meta: dict[str, Any] = {}
    for name in expand:
        if name in CONTENT_OBJECTS:
            key, field = CONTENT_OBJECTS[name]
            found = stored_object(content, key) if field is not None else None
            meta[key] = {
                "size_bytes": len(found[0]) if found else 0,
                "exists": found is not None,
                "presigned_url": presign(key) if found and presign else None,
            }
        elif name == "images_content_metadata":
            out["images_content_metadata"] = {"images": [], "total_count": 0}
        elif name != "usage":
            out[name] = content.expanded(name)
    if meta:
        out["result_content_metadata"] = meta
    return out


_DOC_TYPES = ("invoice", "contract", "receipt", "letter", "other")


def extract_job_body(
    job_id: str,
    project_id: str,
    file_id: str,
    configuration_id: str,
    *,
    times: tuple[str, str],
    expand: list[str],
) -> dict[str, Any]:
    """``GET /api/v2/extract/{job_id}``: every field the SDK requires, every
    nullable one present, and the ``configuration``/``extract_metadata``/``usage``
    expands when asked."""
    status = job_outcome(job_id)
    h = _hash(job_id)
    failed = status == "FAILED"
    pages = 1 + h % 4
    return {
        "id": job_id,
        "project_id": project_id,
        "created_at": times[0],
        "updated_at": times[1],
        "file_input": file_id,
        "configuration_id": configuration_id,
        "status": status,
        "error_message": _error_message(job_id) if failed else None,
        "extract_result": None
        if failed
        else {
            "document_type": _DOC_TYPES[h % len(_DOC_TYPES)],
            "total": round((h >> 8) % 1_000_000 / 100, 2),
            "currency": "EUR" if h % 2 else "USD",
            "source_file": file_id,
        },
        "configuration": {
            "data_schema": {"type": "object", "properties": {"total": {"type": "number"}}},
            "tier": "cost_effective",
        }
        if "configuration" in expand
        else None,
        "extract_metadata": {"parse_job_id": None, "parse_tier": "cost_effective"}
        if "extract_metadata" in expand
        else None,
        "usage": {"credits": pages * 2.0, "extract_credits": pages * 1.0, "parse_credits": pages}
        if "usage" in expand
        else None,
        "metadata": None,
    }


def _lookup(request: web.Request, kind: str) -> tuple[str, Any, str]:
    from ._batches import BATCHES  # (it imports this module)

    store: BatchStore = request.app[BATCHES]
    job_id = request.match_info["job_id"]
    found = store.job(job_id)
    if found is None or found[0].batch.job_type != kind or job_outcome(job_id) == "MISSING":
        noun = "Parse" if kind == "parse_v2" else "Extract"
        raise ApiError(404, f"{noun} job {job_id} not found")
    state, file_id = found
    return job_id, state, file_id


async def get_parse_job_v2(request: web.Request) -> web.StreamResponse:
    errors = Errors(request.query)
    expand: list[str] = []
    # FastAPI does not split commas: "markdown_full,job_metadata" is one unknown value.
    for value in request.query.getall("expand", []):
        if value not in PARSE_EXPANDS:
            errors.add(
                "enum",
                ["query", "expand"],
                f"Input should be one of {', '.join(PARSE_EXPANDS)}",
                value,
            )
        expand.append(value)
    errors.raise_if_any()
    job_id, state, file_id = _lookup(request, "parse_v2")
    refusal = fast_tier_refusal(state.batch.tier, expand)
    if refusal is not None and job_outcome(job_id) == "COMPLETED":
        raise ApiError(400, refusal)
    host: SimHost = request.app[SIM]
    body = parse_job_body_v2(
        job_id,
        state.batch.project_id,
        file_id,
        expand,
        tier=state.batch.tier,
        times=_times(state),
        presign=functools.partial(host.storage.presign, job_id),
    )
    limit = host.fault_state.faults.inline_result_limit
    if limit is not None:
        _over_limit(host, body, limit)
    return _json(200, body)


def _over_limit(host: SimHost, body: dict[str, Any], limit: int) -> None:
    """``Faults.inline_result_limit``: inline contents over it are refused, or
    come back empty (``inline_over_limit``)."""
    for name in PARSE_INLINE:
        value = body.get(name)
        if value is None or len(msgspec.json.encode(value)) <= limit:
            continue
        if host.fault_state.faults.inline_over_limit == "error":
            detail = (
                f"The {name} result is too large to return inline; "
                f"ask for {name}_content_metadata instead."
            )
            raise ApiError(413, detail)
        body[name] = "" if isinstance(value, str) else {"pages": []}


def _times(state: Any) -> tuple[str, str]:
    # Jobs are made as the batch runs and finish at once, deterministically.
    return _iso(state.running_at), _iso(state.finished_at())


async def get_extract_job_v2(request: web.Request) -> web.StreamResponse:
    errors = Errors(request.query)
    expand = request.query.getall("expand", [])
    for value in expand:
        if value not in EXTRACT_EXPANDS:
            expected = "'configuration', 'extract_metadata' or 'usage'"
            errors.add("enum", ["query", "expand"], f"Input should be {expected}", value)
    errors.raise_if_any()
    job_id, state, file_id = _lookup(request, "extract_v2")
    b = state.batch
    body = extract_job_body(
        job_id, b.project_id, file_id, b.configuration_id, times=_times(state), expand=expand
    )
    return _json(200, body)


def storage_resolver(store: BatchStore) -> Callable[[str, str], tuple[bytes, str] | None]:
    """What the storage listener serves: a completed parse job's result objects."""

    def resolve(job_id: str, name: str) -> tuple[bytes, str] | None:
        found = store.job(job_id)
        if found is None or found[0].batch.job_type != "parse_v2":
            return None
        if job_outcome(job_id) != "COMPLETED":
            return None
        return stored_object(ParseContent(job_id, found[1]), name)

    return resolve

"""The product jobs a v2 batch hands out (``job_reference``), in the simulator:
``GET /api/v2/parse/{job_id}`` (with ``expand=``) and ``GET /api/v2/extract/{job_id}``.

A job exists once its batch dispatched its file.  Its outcome and content are a
pure function of its id: most complete, some fail (``error_message``), a few are
missing (404, as a job the server lost or purged) — the same request always gives
the same bytes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._app import _json
from ._results import result_content
from ._validate import ApiError, Errors

if TYPE_CHECKING:  # pragma: no cover
    from ._batches import BatchStore

__all__ = [
    "PARSE_EXPANDS",
    "V2_EXTRACT",
    "V2_PARSE",
    "extract_job_body",
    "job_outcome",
    "parse_job_body_v2",
]

V2_PARSE = "/api/v2/parse"
V2_EXTRACT = "/api/v2/extract"
PARSE_EXPANDS = ("markdown_full", "text_full", "markdown", "text", "items", "job_metadata")

#: One job in ``FAILED_EVERY`` fails, one in ``MISSING_EVERY`` is missing (by hash).
FAILED_EVERY = 7
MISSING_EVERY = 11
_PAGE_CHARS = 1500


def _hash(job_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(), "big")


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


def _size(job_id: str) -> int:
    return 200 + (_hash(job_id) >> 16) % 5000


def parse_job_body_v2(
    job_id: str, project_id: str, file_id: str, expand: list[str]
) -> dict[str, Any]:
    status = job_outcome(job_id)
    failed = status == "FAILED"
    out: dict[str, Any] = {
        "job": {
            "id": job_id,
            "project_id": project_id,
            "status": status,
            "error_message": _error_message(job_id) if failed else None,
        }
    }
    if failed:
        return out
    markdown = result_content(job_id, file_id, _size(job_id))
    text = markdown.replace("#", "")
    pages = [markdown[k : k + _PAGE_CHARS] for k in range(0, len(markdown), _PAGE_CHARS)]
    for name in expand:
        if name == "markdown_full":
            out["markdown_full"] = markdown
        elif name == "text_full":
            out["text_full"] = text
        elif name == "markdown":
            out["markdown"] = {
                "pages": [{"page_number": n + 1, "markdown": p} for n, p in enumerate(pages)]
            }
        elif name == "text":
            out["text"] = {
                "pages": [
                    {"page_number": n + 1, "text": p.replace("#", "")} for n, p in enumerate(pages)
                ]
            }
        elif name == "items":
            out["items"] = {
                "pages": [
                    {"page_number": n + 1, "items": [{"type": "text", "value": p}]}
                    for n, p in enumerate(pages)
                ]
            }
        elif name == "job_metadata":
            out["job_metadata"] = {
                "job_pages": len(pages),
                "credits_used": len(pages) * 3.0,
                "job_is_cache_hit": _hash(job_id) % 5 == 0,
            }
    return out


_DOC_TYPES = ("invoice", "contract", "receipt", "letter", "other")


def extract_job_body(
    job_id: str, project_id: str, file_id: str, configuration_id: str
) -> dict[str, Any]:
    status = job_outcome(job_id)
    h = _hash(job_id)
    failed = status == "FAILED"
    return {
        "id": job_id,
        "project_id": project_id,
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
    return _json(200, parse_job_body_v2(job_id, state.batch.project_id, file_id, expand))


async def get_extract_job_v2(request: web.Request) -> web.StreamResponse:
    job_id, state, file_id = _lookup(request, "extract_v2")
    b = state.batch
    return _json(200, extract_job_body(job_id, b.project_id, file_id, b.configuration_id))

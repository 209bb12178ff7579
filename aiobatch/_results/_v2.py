"""v2 batches: a file's output through its job reference (``GET /api/v2/parse/{id}``,
``GET /api/v2/extract/{id}``), a ``fast``-tier refusal named as such, and a result
too large to come inline fetched through its presigned URL."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import ClassVar, Protocol, TypeVar

import msgspec

from .. import _protocol as proto
from .._errors import APIStatusError, NotFoundError, ResponseTooLargeError
from .._storage import PresignedURLError
from ..models import BatchFileResult, BatchJobType
from ._models import ContentMetadata, ExtractV2Job, ParseV2Job
from ._resolvers import ITEM_STATUSES, Get, server_id
from ._types import ItemFailure, ResultContent

__all__ = [
    "CONTENT_METADATA",
    "FILE_RESOLVERS",
    "ExtractV2Resolver",
    "FileResolver",
    "ParseV2Resolver",
]

M = TypeVar("M")

V2_PARSE = "/api/v2/parse"
V2_EXTRACT = "/api/v2/extract"


class FileResolver(Protocol):
    job_type: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]

    async def fetch(
        self, get: Get, file: BatchFileResult, kind: str, scope: Mapping[str, str]
    ) -> ResultContent: ...


_V2_FAILED = frozenset({"FAILED", "CANCELLED", "ERROR"})
_V2_RUNNING = frozenset({"PENDING", "RUNNING", "THROTTLED"})


def _reference_of(file: BatchFileResult) -> str:
    ref = file.job_reference
    if ref is None:
        why = file.error_message or "no reason given"
        raise ItemFailure("no_job", f"the batch made no job for this file: {why}")
    return server_id("job_reference.id", ref.id)


def _check_v2_status(noun: str, job_id: str, status: str, error: str | None) -> None:
    if status in _V2_FAILED:
        raise ItemFailure(
            "failed", f"{noun} job {job_id} is {status}: {error or 'no reason given'}"
        )
    if status in _V2_RUNNING:
        raise ItemFailure("not_ready", f"{noun} job {job_id} is still {status}")
    if status != "COMPLETED":
        raise ItemFailure("not_ready", f"{noun} job {job_id} is {status} (not COMPLETED)")


async def _get_v2(get: Get, model: type[M], noun: str, path: str, params: proto.Query) -> M:
    job_id = path.rsplit("/", 1)[-1]
    try:
        return await get(model, path, params)
    except NotFoundError as exc:
        raise ItemFailure("missing", f"{noun} job {job_id} not found", status_code=404) from exc
    except APIStatusError as exc:
        if exc.status_code not in ITEM_STATUSES:
            raise
        why = proto.describe_detail(exc.detail) or f"HTTP {exc.status_code}"
        raise ItemFailure(
            "unavailable", f"{noun} job {job_id}: {why}", status_code=exc.status_code
        ) from exc


class ParseV2Resolver:
    """``GET /api/v2/parse/{job_id}?expand=...``: ``markdown`` (``markdown_full``),
    ``text`` (``text_full``) or ``json`` (the ``items`` pages)."""

    job_type: ClassVar[str] = BatchJobType.PARSE_V2
    kinds: ClassVar[tuple[str, ...]] = ("markdown", "text", "json")
    _expand: ClassVar[dict[str, str]] = {
        "markdown": "markdown_full",
        "text": "text_full",
        "json": "items",
    }

    async def fetch(
        self, get: Get, file: BatchFileResult, kind: str, scope: Mapping[str, str]
    ) -> ResultContent:
        job_id = _reference_of(file)
        field = self._expand[kind]
        path = proto.api_path(V2_PARSE, "/{job_id}", job_id=job_id)
        params: proto.Query = {**scope, "expand": (field, "job_metadata")}
        try:
            body = await _get_v2(get, ParseV2Job, "parse", path, params)
        except ResponseTooLargeError:  # over Limits.max_body_bytes: its stored file
            return await fetch_stored(get, job_id, kind, field, path, scope)
        except APIStatusError as exc:
            if exc.status_code == 413:  # "too large to return inline": its stored file
                return await fetch_stored(get, job_id, kind, field, path, scope)
            raise
        except ItemFailure as failure:
            if field in _NOT_FAST and failure.status_code in (400, 422):
                await _check_tier(get, job_id, kind, path, scope, failure)
            if "too large" in str(failure).lower():
                return await fetch_stored(get, job_id, kind, field, path, scope)
            raise
        job = body.job
        _check_v2_status("parse", job_id, str(job.status), job.error_message)
        value = getattr(body, field)
        if _empty(value):  # COMPLETED with nothing inline: too large to come inline
            return await fetch_stored(get, job_id, kind, field, path, scope)
        data = bytes(value) if isinstance(value, msgspec.Raw) else value.encode("utf-8")
        return ResultContent(kind, data, body.job_metadata)


def _empty(value: str | msgspec.Raw | None) -> bool:
    """Nothing inline: absent, null, ``""``, or pages without a page (no parsed
    document has none)."""
    if value is None or isinstance(value, str):
        return not value
    raw = bytes(value)
    if raw in (b"", b"null"):
        return True
    if len(raw) > 64:
        return False
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    return isinstance(decoded, dict) and not decoded.get("pages")


#: Inline field -> its ``*_content_metadata`` expand, and the names its stored
#: file may have in ``result_content_metadata`` (the map's keys are not pinned).
CONTENT_METADATA: dict[str, tuple[str, tuple[str, ...]]] = {
    "markdown_full": ("markdown_full_content_metadata", ("markdown_full", "mdFull", "md")),
    "text_full": ("text_full_content_metadata", ("text_full", "fullText", "txt", "text")),
    "items": ("items_content_metadata", ("items", "json")),
}


async def fetch_stored(
    get: Get, job_id: str, kind: str, field: str, path: str, scope: Mapping[str, str]
) -> ResultContent:
    """The result from object storage: its presigned URL (``*_content_metadata``),
    streamed to an anonymous temporary file; an expired URL is read again once."""
    expand, names = CONTENT_METADATA[field]
    params: proto.Query = {**scope, "expand": (expand, "job_metadata")}
    for attempt in range(2):
        body = await _get_v2(get, ParseV2Job, "parse", path, params)
        _check_v2_status("parse", job_id, str(body.job.status), body.job.error_message)
        url = _stored_url(body.result_content_metadata, names, job_id, field)
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (the result owns it)
        try:
            size = await get.download(url, spool)
        except PresignedURLError as exc:
            spool.close()
            if exc.expired and attempt == 0:
                continue  # the URL ran out: ask for a fresh one, once
            raise ItemFailure(
                "unavailable", f"parse job {job_id}: its stored {field}: {exc}", status_code=None
            ) from exc
        except BaseException:
            spool.close()
            raise
        return ResultContent(kind, metadata=body.job_metadata, spool=spool, size=size)
    raise AssertionError("unreachable")  # pragma: no cover


def _stored_url(
    found: Mapping[str, ContentMetadata] | None, names: tuple[str, ...], job_id: str, field: str
) -> str:
    entries = {k: v for k, v in (found or {}).items() if v.presigned_url and v.exists is not False}
    pick = next((entries[n] for n in names if n in entries), None)
    if pick is None and len(entries) == 1:
        pick = next(iter(entries.values()))
    if pick is None or pick.presigned_url is None:
        raise ItemFailure(
            "too_large",
            f"parse job {job_id}: its {field} did not come inline (too large) and the "
            "server gave no presigned URL for a stored copy",
        )
    return pick.presigned_url


#: What the ``fast`` tier does not make (its refusal: "Markdown expansion is not
#: available for FAST tier jobs.").
_NOT_FAST = frozenset({"markdown_full", "markdown", "items"})


async def _check_tier(
    get: Get, job_id: str, kind: str, path: str, scope: Mapping[str, str], failure: ItemFailure
) -> None:
    """A refused expand: if the job ran at the ``fast`` tier, say so (the job
    itself, asked without the expand, names its tier)."""
    tier: str | None = "fast" if "fast tier" in str(failure).lower() else None
    if tier is None:
        try:
            tier = (await get(ParseV2Job, path, scope)).job.tier
        except (ItemFailure, APIStatusError):
            return
    if (tier or "").lower() != "fast":
        return
    raise ItemFailure(
        "unsupported_tier",
        f"parse job {job_id} ran at the fast tier, which makes no {kind} result "
        f'(markdown and json need another tier): use result="text"',
        status_code=failure.status_code,
    ) from failure


class ExtractV2Resolver:
    """``GET /api/v2/extract/{job_id}``: its ``extract_result`` (JSON)."""

    job_type: ClassVar[str] = BatchJobType.EXTRACT_V2
    kinds: ClassVar[tuple[str, ...]] = ("json",)

    async def fetch(
        self, get: Get, file: BatchFileResult, kind: str, scope: Mapping[str, str]
    ) -> ResultContent:
        job_id = _reference_of(file)
        path = proto.api_path(V2_EXTRACT, "/{job_id}", job_id=job_id)
        job = await _get_v2(get, ExtractV2Job, "extract", path, scope)
        _check_v2_status("extract", job_id, str(job.status), job.error_message)
        if bytes(job.extract_result) in (b"", b"null"):
            raise ItemFailure("invalid", f"extract job {job_id} is COMPLETED but has no result")
        return ResultContent(kind, bytes(job.extract_result))


#: v2 batch job type -> where its files' output lives.
FILE_RESOLVERS: dict[str, FileResolver] = {
    BatchJobType.PARSE_V2: ParseV2Resolver(),
    BatchJobType.EXTRACT_V2: ExtractV2Resolver(),
}

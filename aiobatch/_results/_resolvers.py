"""One small resolver per job type: where an item's output lives, and how to
fetch it (item -> request(s) -> content, or an ``ItemFailure``).

A resolver sees the API only through ``Get``: one GET, retried by the client's
policy and paced by the stream's 429-aware limiter.  Supporting another job
type is one more class and one more line in ``RESOLVERS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec

from .. import _protocol as proto
from .._errors import APIStatusError, NotFoundError
from ..models import BatchFileResult, BatchItem, BatchJobType, JobType
from ._models import (
    ClassifyResult,
    ClassifyResultList,
    ExtractV2Job,
    ParseJob,
    ParseJobStatus,
    ParseJsonResult,
    ParseMarkdownResult,
    ParseTextResult,
    ParseV2Job,
)
from ._types import ErrorKind, ItemFailure, ResultContent

__all__ = [
    "FILE_RESOLVERS",
    "RESOLVERS",
    "ClassifyResolver",
    "ExtractV2Resolver",
    "FileResolver",
    "Get",
    "ParseResolver",
    "ParseV2Resolver",
    "Resolver",
]

M = TypeVar("M")

V2_PARSE = "/api/v2/parse"
V2_EXTRACT = "/api/v2/extract"


class Get(Protocol):
    """One GET, retried and paced, decoded into ``model``."""

    async def __call__(self, model: type[M], path: str, params: Mapping[str, str]) -> M: ...


class Resolver(Protocol):
    job_type: ClassVar[str]
    #: The result kinds this job type has; the first is the default.
    kinds: ClassVar[tuple[str, ...]]

    async def fetch(
        self, get: Get, item: BatchItem, kind: str, scope: Mapping[str, str]
    ) -> ResultContent: ...


#: Statuses that say something about the item, not about the client or server.
_ITEM_STATUSES = frozenset({400, 404, 409, 410, 422})


def _job_of(item: BatchItem) -> str:
    if not item.job_id:
        raise ItemFailure("no_job", f"item has no processing job (status {item.status})")
    return _server_id("job_id", item.job_id)


#: Line and paragraph separators: no id holds one, and shown in a note or an
#: index line, one would start a line of its own.
_SEPARATORS = frozenset("\u2028\u2029\x85")


def _server_id(name: str, value: str) -> str:
    """An id the server gave, checked as a path segment.  A bad one (``..``,
    blank, a control character or a line separator) is this item's ``invalid``
    error: the other items' results are still fetched."""
    try:
        proto.check_id(name, value)
        if _SEPARATORS.intersection(value):
            raise ValueError(f"{name} must not contain a line separator")
    except ValueError as exc:
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise ItemFailure(
            "invalid", f"the server gave an unusable {name} {shown!r}: {exc}"
        ) from None
    return value


class ParseResolver:
    """``GET /api/v1/parsing/job/{job_id}/result/{kind}``; a 404 means no
    result (``missing``); another refusal is explained by the job's status
    (``GET /api/v1/parsing/job/{job_id}``: ``failed``, ``not_ready``...)."""

    job_type: ClassVar[str] = JobType.PARSE
    kinds: ClassVar[tuple[str, ...]] = ("markdown", "text", "json")
    _models: ClassVar[dict[str, type[Any]]] = {
        "markdown": ParseMarkdownResult,
        "text": ParseTextResult,
        "json": ParseJsonResult,
    }

    async def fetch(
        self, get: Get, item: BatchItem, kind: str, scope: Mapping[str, str]
    ) -> ResultContent:
        job_id = _job_of(item)
        path = proto.api_path(proto.PARSING, "/job/{job_id}/result/" + kind, job_id=job_id)
        try:
            body = await get(self._models[kind], path, scope)
        except NotFoundError as exc:
            raise ItemFailure(
                "missing", f"no {kind} result for parse job {job_id} (404)", status_code=404
            ) from exc
        except APIStatusError as exc:
            if exc.status_code not in _ITEM_STATUSES:
                raise
            await self._explain(get, job_id, scope, exc)
            raise  # pragma: no cover - _explain always raises
        if isinstance(body, ParseJsonResult):
            data = bytes(body.pages)
        elif isinstance(body, ParseMarkdownResult):
            data = body.markdown.encode("utf-8")
        else:
            data = body.text.encode("utf-8")
        return ResultContent(kind, data, body.job_metadata)

    async def _explain(
        self, get: Get, job_id: str, scope: Mapping[str, str], exc: APIStatusError
    ) -> None:
        detail = proto.describe_detail(exc.detail) or f"HTTP {exc.status_code}"
        path = proto.api_path(proto.PARSING, "/job/{job_id}", job_id=job_id)
        try:
            job = await get(ParseJob, path, scope)
        except NotFoundError:
            raise ItemFailure("missing", f"parse job {job_id} not found", status_code=404) from exc
        status = job.status
        if status in (ParseJobStatus.ERROR, ParseJobStatus.CANCELLED):
            raise ItemFailure(
                "failed", f"parse job {job_id} is {status}: {detail}", status_code=exc.status_code
            ) from exc
        if status == ParseJobStatus.PENDING:
            raise ItemFailure(
                "not_ready", f"parse job {job_id} is still PENDING", status_code=exc.status_code
            ) from exc
        kind: ErrorKind = "missing" if exc.status_code == 404 else "unavailable"
        raise ItemFailure(
            kind,
            f"parse job {job_id} is {status} but its result failed: {detail}",
            status_code=exc.status_code,
        ) from exc


_classify_list = msgspec.json.Encoder()


class ClassifyResolver:
    """``GET /api/v1/classifier/jobs/{classify_job_id}/results``, every cursor
    page (a classify job usually has one result per file)."""

    job_type: ClassVar[str] = JobType.CLASSIFY
    kinds: ClassVar[tuple[str, ...]] = ("classification",)
    page_size: ClassVar[int] = 100
    #: A cursor that never ends is the server's bug, not an endless download.
    max_pages: ClassVar[int] = 1000

    async def fetch(
        self, get: Get, item: BatchItem, kind: str, scope: Mapping[str, str]
    ) -> ResultContent:
        job_id = _job_of(item)
        path = proto.api_path(proto.CLASSIFIER, "/jobs/{job_id}/results", job_id=job_id)
        found: list[ClassifyResult] = []
        tokens: set[str] = set()
        token: str | None = None
        for _ in range(self.max_pages):
            params = {**scope, "page_size": str(self.page_size)}
            if token is not None:
                params["page_token"] = token
            try:
                page = await get(ClassifyResultList, path, params)
            except NotFoundError as exc:
                raise ItemFailure(
                    "missing", f"classify job {job_id} not found", status_code=404
                ) from exc
            except APIStatusError as exc:
                if exc.status_code not in _ITEM_STATUSES:
                    raise
                why = proto.describe_detail(exc.detail) or f"HTTP {exc.status_code}"
                raise ItemFailure("failed", why, status_code=exc.status_code) from exc
            found.extend(page.items or ())
            token = page.next_page_token or None
            if token is None:
                break
            if token in tokens:
                raise ItemFailure("invalid", f"classify results of {job_id}: page token repeats")
            tokens.add(token)
        else:
            raise ItemFailure(
                "invalid", f"classify results of {job_id}: over {self.max_pages} pages"
            )
        if not found:
            raise ItemFailure("not_ready", f"classify job {job_id} has no results yet")
        return ResultContent(kind, _classify_list.encode(found))


#: Job type -> where its items' output lives.
RESOLVERS: dict[str, Resolver] = {
    JobType.PARSE: ParseResolver(),
    JobType.CLASSIFY: ClassifyResolver(),
}


# --- v2 batches: a file's output through its job reference -------------------


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
    return _server_id("job_reference.id", ref.id)


def _check_v2_status(noun: str, job_id: str, status: str, error: str | None) -> None:
    if status in _V2_FAILED:
        raise ItemFailure(
            "failed", f"{noun} job {job_id} is {status}: {error or 'no reason given'}"
        )
    if status in _V2_RUNNING:
        raise ItemFailure("not_ready", f"{noun} job {job_id} is still {status}")
    if status != "COMPLETED":
        raise ItemFailure("not_ready", f"{noun} job {job_id} is {status} (not COMPLETED)")


async def _get_v2(get: Get, model: type[M], noun: str, path: str, params: Mapping[str, str]) -> M:
    job_id = path.rsplit("/", 1)[-1]
    try:
        return await get(model, path, params)
    except NotFoundError as exc:
        raise ItemFailure("missing", f"{noun} job {job_id} not found", status_code=404) from exc
    except APIStatusError as exc:
        if exc.status_code not in _ITEM_STATUSES:
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
        params = {**scope, "expand": f"{field},job_metadata"}
        body = await _get_v2(get, ParseV2Job, "parse", path, params)
        job = body.job
        _check_v2_status("parse", job_id, str(job.status), job.error_message)
        value = getattr(body, field)
        if value is None or (isinstance(value, msgspec.Raw) and bytes(value) in (b"", b"null")):
            raise ItemFailure("invalid", f"parse job {job_id} is COMPLETED but has no {field}")
        data = bytes(value) if isinstance(value, msgspec.Raw) else value.encode("utf-8")
        return ResultContent(kind, data, body.job_metadata)


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

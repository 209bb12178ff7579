"""One small resolver per job type: where an item's output lives, and how to
fetch it (item -> request(s) -> content, or an ``ItemFailure``).

A resolver sees the API only through ``Get``: one GET, retried by the client's
policy and paced by the stream's 429-aware limiter.  Supporting another job
type is one more class and one more line in ``RESOLVERS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, ClassVar, Protocol, TypeVar

import msgspec

from .. import _protocol as proto
from .._errors import APIStatusError, NotFoundError
from ..models import BatchItem, JobType
from ._models import (
    ClassifyJob,
    ClassifyResultList,
    ParseJob,
    ParseJobStatus,
    ParseJsonResult,
    ParseMarkdownResult,
    ParseTextResult,
)
from ._types import ErrorKind, ItemFailure, ResultContent

__all__ = ["ITEM_STATUSES", "RESOLVERS", "ClassifyResolver", "Get", "ParseResolver", "Resolver"]

M = TypeVar("M")


class Get(Protocol):
    """One GET, retried and paced, decoded into ``model``; ``download`` streams a
    presigned object-storage URL into a file (no key, no client header)."""

    async def __call__(self, model: type[M], path: str, params: proto.Query) -> M: ...

    async def download(self, url: str, sink: IO[bytes]) -> int: ...


class Resolver(Protocol):
    job_type: ClassVar[str]
    #: The result kinds this job type has; the first is the default.
    kinds: ClassVar[tuple[str, ...]]

    async def fetch(
        self, get: Get, item: BatchItem, kind: str, scope: Mapping[str, str]
    ) -> ResultContent: ...


#: Statuses that say something about the item, not about the client or server.
ITEM_STATUSES = frozenset({400, 404, 409, 410, 422})


#: Item statuses of a batch job that is still running.
_RUNNING = frozenset({"pending", "processing"})


def _job_of(item: BatchItem) -> str:
    if not item.job_id:
        if str(item.status) in _RUNNING:
            raise ItemFailure("not_ready", f"item is {item.status}: its batch job is still running")
        raise ItemFailure("no_job", f"item has no processing job (status {item.status})")
    return item.job_id


class ParseResolver:
    """``GET /api/v1/parsing/job/{job_id}/result/{kind}``; a refusal (a 404
    too: it means "not ready" as well as "missing") is explained by the job's
    status (``GET /api/v1/parsing/job/{job_id}``): ``not_ready`` while it is
    pending, ``failed`` with its ``error_code`` / ``error_message``, ``missing``
    only when it succeeded or does not exist."""

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
        except APIStatusError as exc:
            if exc.status_code not in ITEM_STATUSES:
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
            why = ": ".join(w for w in (job.error_code, job.error_message) if w) or detail
            raise ItemFailure(
                "failed", f"parse job {job_id} is {status}: {why}", status_code=exc.status_code
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
    """The classify job's status (``GET /api/v1/classifier/jobs/{id}``: failed,
    not ready?), then ``GET /api/v1/classifier/jobs/{id}/results``: one answer.
    The request takes no paging parameters; a ``next_page_token`` is the generic
    list envelope's and is not followed (a server echoing one is no loop)."""

    job_type: ClassVar[str] = JobType.CLASSIFY
    kinds: ClassVar[tuple[str, ...]] = ("classification",)

    async def fetch(
        self, get: Get, item: BatchItem, kind: str, scope: Mapping[str, str]
    ) -> ResultContent:
        job_id = _job_of(item)
        path = proto.api_path(proto.CLASSIFIER, "/jobs/{j}", j=job_id)
        job = await _classify_get(get, ClassifyJob, job_id, path, scope)
        if job.status in (ParseJobStatus.ERROR, ParseJobStatus.CANCELLED):
            why = job.error_message or "no reason given"
            raise ItemFailure("failed", f"classify job {job_id} is {job.status}: {why}")
        if job.status == ParseJobStatus.PENDING:
            raise ItemFailure("not_ready", f"classify job {job_id} is still PENDING")
        page = await _classify_get(get, ClassifyResultList, job_id, path + "/results", scope)
        found = page.items
        if not found:
            why = f"classify job {job_id} is {job.status} but has no results"
            raise ItemFailure("missing", why)
        return ResultContent(kind, _classify_list.encode(found))


async def _classify_get(
    get: Get, model: type[M], job_id: str, path: str, scope: Mapping[str, str]
) -> M:
    try:
        return await get(model, path, scope)
    except NotFoundError as exc:
        raise ItemFailure("missing", f"classify job {job_id} not found", status_code=404) from exc
    except APIStatusError as exc:
        if exc.status_code not in ITEM_STATUSES:
            raise
        why = proto.describe_detail(exc.detail) or f"HTTP {exc.status_code}"
        raise ItemFailure("failed", why, status_code=exc.status_code) from exc


#: Job type -> where its items' output lives.
RESOLVERS: dict[str, Resolver] = {
    JobType.PARSE: ParseResolver(),
    JobType.CLASSIFY: ClassifyResolver(),
}

"""Wire models of the endpoints where a batch item's output lives (outside
``/batch-processing``): parse jobs and their results, classify results.
Loose where the reference is loose (``job_metadata``, the JSON pages)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ..models import _Model, _OpenStrEnum

__all__ = [
    "ClassifyJob",
    "ClassifyOutcome",
    "ClassifyResult",
    "ClassifyResultList",
    "ContentMetadata",
    "ExtractV2Job",
    "ParseJob",
    "ParseJobStatus",
    "ParseJsonResult",
    "ParseMarkdownResult",
    "ParseTextResult",
    "ParseV2Job",
    "V2JobInfo",
]


class ParseJobStatus(_OpenStrEnum):
    """Status of a parse job (``GET /api/v1/parsing/job/{job_id}``)."""

    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    CANCELLED = "CANCELLED"


class ParseJob(_Model):
    id: str
    status: ParseJobStatus
    #: Why the job failed (the item's error carries them).
    error_code: str | None = None
    error_message: str | None = None


class ParseTextResult(_Model):
    text: str
    job_metadata: dict[str, Any] | None = None


class ParseMarkdownResult(_Model):
    markdown: str
    job_metadata: dict[str, Any] | None = None


class ParseJsonResult(_Model):
    #: Kept as the raw JSON the server sent: written out as is, decoded on demand.
    pages: msgspec.Raw
    job_metadata: dict[str, Any] | None = None


class ClassifyOutcome(_Model):
    type: str | None = None
    confidence: float | None = None
    reasoning: str | None = None


class ClassifyResult(_Model):
    id: str
    classify_job_id: str | None = None
    file_id: str | None = None
    result: ClassifyOutcome | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ClassifyJob(_Model):
    """``GET /api/v1/classifier/jobs/{classify_job_id}`` (the fields read here)."""

    id: str
    status: ParseJobStatus
    error_message: str | None = None


class ClassifyResultList(_Model):
    items: list[ClassifyResult] | None = None
    next_page_token: str | None = None


# --- v2 product jobs (the ``job_reference`` of a v2 batch's file) ----------


class V2JobInfo(_Model):
    """``job`` of ``GET /api/v2/parse/{job_id}``."""

    id: str
    status: str
    project_id: str | None = None
    error_message: str | None = None
    #: ``fast``, ``cost_effective``, ``agentic``, ``agentic_plus`` (open).
    tier: str | None = None


class ContentMetadata(_Model):
    """One entry of ``result_content_metadata``: where a stored result is."""

    size_bytes: int | None = None
    exists: bool | None = None
    presigned_url: str | None = None


class ParseV2Job(_Model):
    """``GET /api/v2/parse/{job_id}`` with ``expand=``: the job and the contents
    asked for (loose where the reference is loose)."""

    job: V2JobInfo
    #: With a ``*_content_metadata`` expand: result name -> its stored file.
    result_content_metadata: dict[str, ContentMetadata] | None = None
    markdown_full: str | None = None
    text_full: str | None = None
    #: Raw JSON (empty when absent; ``null`` when the server sent null).
    items: msgspec.Raw = msgspec.Raw()
    job_metadata: dict[str, Any] | None = None


class ExtractV2Job(_Model):
    """``GET /api/v2/extract/{job_id}``."""

    id: str
    status: str
    error_message: str | None = None
    #: Raw JSON (empty when absent; ``null`` when the server sent null).
    extract_result: msgspec.Raw = msgspec.Raw()

"""Wire models: one msgspec Struct per object of the batch API.

Field names and optionality follow the API reference exactly, so
``msgspec.json.encode(obj)`` gives back the wire form (``None`` fields are
omitted).  Unknown fields are ignored, so new server fields never break decoding.

Statuses and job types are ``StrEnum``s that stay *open*: a value the reference
does not list yet decodes to a pseudo-member that keeps its string (``.known`` is
False), instead of failing the whole page.  Members compare equal to their
strings, so ``item.status == "failed"`` works as well as ``ItemStatus.FAILED``.

Decoders are built once per type (msgspec's own advice) and reused; the hot path
does no per-item Python work.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar, get_origin

import msgspec

__all__ = [
    "Batch",
    "BatchConfig",
    "BatchFileResult",
    "BatchItem",
    "BatchItemListResponse",
    "BatchJob",
    "BatchJobConfig",
    "BatchJobList",
    "BatchJobStatus",
    "BatchJobType",
    "BatchList",
    "BatchStatus",
    "CancelResponse",
    "DirectoryFile",
    "DirectoryFileList",
    "ItemStatus",
    "JobReference",
    "JobStatus",
    "JobType",
    "ProcessingResult",
    "ProcessingResults",
]

_MAX_UNKNOWN = 64  # bound the cache of unknown values a hostile server could grow
_unknown_lock = threading.Lock()


class _OpenStrEnum(enum.StrEnum):
    """A StrEnum that accepts values it does not know, keeping them as strings."""

    _unknown_count: ClassVar[int]

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        # msgspec calls ``_missing_`` directly for every unknown value it meets
        # (it does not go through ``_value2member_map_``), so look the cache up here.
        cached = cls._value2member_map_.get(value)
        if cached is not None:
            return cached  # type: ignore[return-value]
        member = str.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        with _unknown_lock:
            count = cls.__dict__.get("_unknown_count", 0)
            if value not in cls._value2member_map_ and count < _MAX_UNKNOWN:
                # Cache so later pages reuse one pseudo-member (identity and speed).
                cls._value2member_map_[value] = member
                type.__setattr__(cls, "_unknown_count", count + 1)
        return member

    @property
    def known(self) -> bool:
        """True when the value is one the API reference lists."""
        return self._name_ in type(self).__members__


class ItemStatus(_OpenStrEnum):
    """Status of one item of a batch job."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class JobStatus(_OpenStrEnum):
    """Status of a batch job."""

    PENDING = "pending"
    RUNNING = "running"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobType(_OpenStrEnum):
    PARSE = "parse"
    EXTRACT = "extract"
    CLASSIFY = "classify"


class _Model(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class BatchItem(_Model, gc=False):
    """One item (one file) of a batch job."""

    item_id: str
    item_name: str
    status: ItemStatus
    completed_at: datetime | None = None
    effective_at: datetime | None = None
    error_message: str | None = None
    job_id: str | None = None
    job_record_id: str | None = None
    skip_reason: str | None = None
    started_at: datetime | None = None


class BatchItemListResponse(_Model):
    """One page of ``GET /batch-processing/{job_id}/items``.

    ``total_size`` may be missing or an estimate; ``items`` is never ``None``.
    """

    items: list[BatchItem] = msgspec.field(default_factory=list)
    next_page_token: str | None = None
    total_size: int | None = None


class BatchJob(_Model):
    id: str
    job_type: JobType
    project_id: str
    status: JobStatus
    total_items: int
    completed_at: datetime | None = None
    created_at: datetime | None = None
    directory_id: str | None = None
    effective_at: datetime | None = None
    error_message: str | None = None
    failed_items: int | None = None
    job_record_id: str | None = None
    processed_items: int | None = None
    skipped_items: int | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    workflow_id: str | None = None


class BatchJobList(_Model):
    items: list[BatchJob] = msgspec.field(default_factory=list)
    next_page_token: str | None = None
    total_size: int | None = None


class BatchJobStatus(_Model):
    job: BatchJob
    progress_percentage: float


class CancelResponse(_Model):
    job_id: str
    message: str
    processed_items: int
    status: JobStatus


class ProcessingResult(_Model):
    item_id: str
    # job_config is a large, evolving object: kept as plain JSON on purpose.
    job_config: dict[str, Any]
    job_type: JobType
    output_s3_path: str
    parameters_hash: str
    processed_at: datetime
    result_id: str
    output_metadata: Any | None = None


class ProcessingResults(_Model):
    item_id: str
    item_name: str
    processing_results: list[ProcessingResult] = msgspec.field(default_factory=list)


# --- v2 Batches API (/api/v2/batches) ---------------------------------------


class BatchStatus(_OpenStrEnum):
    """Status of a v2 batch (upper case on the wire)."""

    PENDING = "PENDING"
    THROTTLED = "THROTTLED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)


class BatchJobType(_OpenStrEnum):
    """The product job a v2 batch runs on each file."""

    PARSE_V2 = "parse_v2"
    EXTRACT_V2 = "extract_v2"


class BatchJobConfig(_Model):
    type: BatchJobType
    configuration_id: str


class BatchConfig(_Model):
    job: BatchJobConfig


class JobReference(_Model):
    """The product job made for one file (``GET /api/v2/parse/{id}`` or ``extract``)."""

    type: str
    id: str


class BatchFileResult(_Model):
    """One source file of a batch: its job, or why none could be made.

    ``source_directory_file_id`` is the stable key; a null ``job_reference``
    with an ``error_message`` means no job was made for the file."""

    source_directory_file_id: str
    job_reference: JobReference | None = None
    error_message: str | None = None


class Batch(_Model):
    """A v2 batch.  ``results`` is filled only with ``expand=results`` and may be
    ``None`` while the batch runs; a ``FAILED`` batch's results are not reliable."""

    id: str
    config: BatchConfig
    project_id: str
    source_directory_id: str
    status: BatchStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None
    results: list[BatchFileResult] | None = None


class BatchList(_Model):
    """One page of ``GET /api/v2/batches``: cursor-paged, no total."""

    items: list[Batch] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


class DirectoryFile(_Model):
    """One file of a directory (``GET /api/v1/beta/directories/{id}/files``):
    ``id`` is what a v2 batch's results call ``source_directory_file_id``;
    ``display_name`` is the file's name (server text: never a trusted path)."""

    id: str
    display_name: str
    directory_id: str | None = None
    project_id: str | None = None
    unique_id: str | None = None
    file_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class DirectoryFileList(_Model):
    """One cursor page of a directory's files."""

    items: list[DirectoryFile] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


# --- decoding -------------------------------------------------------------
# The reference allows ``"items": null``, and msgspec cannot map null onto a
# ``list``.  One rule covers every model: a list field that may be missing
# (``default_factory=list``) may also be ``null``, and both read as ``[]``.  A
# body decodes straight into the public model; only when msgspec refuses it does
# it decode again through a twin derived from the model's own fields (those lists
# made ``list[X] | None = None``), normalised into the model.  A null list only
# comes with an empty page, so the retry is cheap; the hot path has no Python
# work at all, and a body that is really wrong fails the twin the same way.


def _nullable_lists(tp: type[msgspec.Struct]) -> tuple[str, ...]:
    return tuple(
        f.name
        for f in msgspec.structs.fields(tp)
        if f.default_factory is list and get_origin(f.type) is list
    )


def _twin(tp: type[msgspec.Struct], lists: tuple[str, ...]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    for f in msgspec.structs.fields(tp):
        if f.name in lists:
            fields.append((f.name, f.type | None, msgspec.field(name=f.encode_name, default=None)))
        elif f.required:
            fields.append((f.name, f.type, msgspec.field(name=f.encode_name)))
        elif f.default_factory is not msgspec.NODEFAULT:
            factory = f.default_factory
            fields.append(
                (f.name, f.type, msgspec.field(name=f.encode_name, default_factory=factory))
            )
        else:
            fields.append((f.name, f.type, msgspec.field(name=f.encode_name, default=f.default)))
    return msgspec.defstruct(f"_Wire{tp.__name__}", fields, kw_only=True)


T = TypeVar("T")

_decoders: dict[Any, Callable[[bytes], Any]] = {}


def _build_decoder(tp: Any) -> Callable[[bytes], Any]:
    strict = msgspec.json.Decoder(tp).decode
    lists = _nullable_lists(tp) if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else ()
    if not lists:
        return strict
    twin = msgspec.json.Decoder(_twin(tp, lists)).decode
    asdict = msgspec.structs.asdict

    def decode_nullable(data: bytes) -> Any:
        try:
            return strict(data)
        except msgspec.ValidationError:
            values = asdict(twin(data))  # raises again unless a list was null
        for name in lists:
            if values[name] is None:
                values[name] = []
        return tp(**values)

    return decode_nullable


def decode(tp: type[T], data: bytes) -> T:
    """Decode ``data`` as ``tp``.  Raises ``msgspec.DecodeError`` / ``ValidationError``."""
    dec = _decoders.get(tp)
    if dec is None:
        dec = _decoders[tp] = _build_decoder(tp)
    result: T = dec(data)
    return result


_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    """The wire form of a model (``None`` fields omitted)."""
    return _encoder.encode(obj)

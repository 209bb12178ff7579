"""aiobatch: a fast, trustworthy asyncio client for LlamaCloud batch jobs."""

from __future__ import annotations

__version__ = "0.1.0"

from ._client import BatchClient
from ._config import DEFAULT_BASE_URL, EU_BASE_URL, Limits, Timeout
from ._errors import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    ContentEncodingError,
    DriftError,
    InternalServerError,
    NotFoundError,
    PageFetchError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    TLSVerificationError,
    UnprocessableEntityError,
)
from ._paging import Page, ScanOptions, ScanProgress
from ._retry import RetryPolicy
from .arrow import iter_arrow, to_arrow  # pyarrow itself is imported only when called
from .models import (
    BatchItem,
    BatchItemListResponse,
    BatchJob,
    BatchJobList,
    BatchJobStatus,
    CancelResponse,
    ItemStatus,
    JobStatus,
    JobType,
    ProcessingResult,
    ProcessingResults,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "EU_BASE_URL",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AiobatchError",
    "AuthenticationError",
    "BadRequestError",
    "BatchClient",
    "BatchItem",
    "BatchItemListResponse",
    "BatchJob",
    "BatchJobList",
    "BatchJobStatus",
    "CancelResponse",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ContentEncodingError",
    "DriftError",
    "InternalServerError",
    "ItemStatus",
    "JobStatus",
    "JobType",
    "Limits",
    "NotFoundError",
    "Page",
    "PageFetchError",
    "PaginationError",
    "PermissionDeniedError",
    "ProcessingResult",
    "ProcessingResults",
    "RateLimitError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ScanOptions",
    "ScanProgress",
    "TLSVerificationError",
    "Timeout",
    "UnprocessableEntityError",
    "__version__",
    "iter_arrow",
    "to_arrow",
]

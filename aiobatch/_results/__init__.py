"""Where batch items' outputs live, and the stream that fetches them
(``client.job_items.iter_results``)."""

from __future__ import annotations

from ._models import (
    ClassifyOutcome,
    ClassifyResult,
    ClassifyResultList,
    ParseJob,
    ParseJobStatus,
)
from ._resolvers import RESOLVERS, ClassifyResolver, Get, ParseResolver, Resolver
from ._stream import (
    FileResultIterator,
    FileSetup,
    ResultIterator,
    ResultStream,
    Setup,
    start_file_results,
    start_results,
)
from ._types import (
    ErrorKind,
    FileResult,
    ItemError,
    ItemFailure,
    ItemResult,
    ResultContent,
    ResultsProgress,
    UnsupportedJobTypeError,
)
from ._v2 import FILE_RESOLVERS, ExtractV2Resolver, FileResolver, ParseV2Resolver

__all__ = [
    "FILE_RESOLVERS",
    "RESOLVERS",
    "ClassifyOutcome",
    "ClassifyResolver",
    "ClassifyResult",
    "ClassifyResultList",
    "ErrorKind",
    "ExtractV2Resolver",
    "FileResolver",
    "FileResult",
    "FileResultIterator",
    "FileSetup",
    "Get",
    "ItemError",
    "ItemFailure",
    "ItemResult",
    "ParseJob",
    "ParseJobStatus",
    "ParseResolver",
    "ParseV2Resolver",
    "Resolver",
    "ResultContent",
    "ResultIterator",
    "ResultStream",
    "ResultsProgress",
    "Setup",
    "UnsupportedJobTypeError",
    "start_file_results",
    "start_results",
]

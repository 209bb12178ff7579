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
from ._stream import ResultIterator, Setup, start_results
from ._types import (
    ErrorKind,
    ItemError,
    ItemFailure,
    ItemResult,
    ResultContent,
    ResultsProgress,
    UnsupportedJobTypeError,
)

__all__ = [
    "RESOLVERS",
    "ClassifyOutcome",
    "ClassifyResolver",
    "ClassifyResult",
    "ClassifyResultList",
    "ErrorKind",
    "Get",
    "ItemError",
    "ItemFailure",
    "ItemResult",
    "ParseJob",
    "ParseJobStatus",
    "ParseResolver",
    "Resolver",
    "ResultContent",
    "ResultIterator",
    "ResultsProgress",
    "Setup",
    "UnsupportedJobTypeError",
    "start_results",
]

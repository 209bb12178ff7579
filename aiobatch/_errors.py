"""The exception tree.

It mirrors what went wrong, as httpx's does: the request never got an answer
(``APIConnectionError`` / ``APITimeoutError``), the server answered with an error
status (``APIStatusError`` and one subclass per status family), the answer could
not be read (``ResponseDecodeError`` and its ``ContentEncodingError``,
``ResponseTooLargeError``), or a scan could
not be completed (``PaginationError``).  Messages never contain the API key: the
key lives only in the transport's headers, and nothing here is built from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .models import Batch, BatchJobStatus
    from .workflows import RetryPlan

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AiobatchError",
    "AuthenticationError",
    "BadRequestError",
    "BatchFailedError",
    "BatchNotFinishedError",
    "BatchWaitTimeoutError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ContentEncodingError",
    "DriftError",
    "InternalServerError",
    "JobFailedError",
    "JobWaitTimeoutError",
    "MissingAPIKeyError",
    "MissingJobConfigError",
    "NotFoundError",
    "PageFetchError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryFailedError",
    "TLSVerificationError",
    "UnprocessableEntityError",
    "WebhookPayloadError",
    "WebhookVerificationError",
]


class AiobatchError(Exception):
    """Base class of every error aiobatch raises on purpose."""

    #: Requests made before giving up (the retry loop sets it; 1: not retried).
    attempts: int = 1


class ConfigurationError(AiobatchError, ValueError):
    """The client cannot be built as asked (no API key, a malformed base URL...)."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was passed, and none is set in the environment."""


class ClientClosedError(AiobatchError, RuntimeError):
    """The client was used before ``async with`` / after ``aclose()``."""


class APIConnectionError(AiobatchError):
    """No complete response arrived: refused, reset, truncated, TLS failure.

    ``request_sent`` is False only when the request provably never left (the
    connection could not be opened): the one case a POST may be replayed.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", request_sent: bool = True
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """A connect, read or total timeout fired."""


class TLSVerificationError(APIConnectionError):
    """The TLS handshake failed: the server's certificate was rejected, or the
    server does not speak TLS there.  Never retried."""


class ResponseTooLargeError(AiobatchError):
    """The body is larger than ``Limits.max_body_bytes``; it was not read into memory."""

    def __init__(self, message: str, *, limit: int, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.limit = limit
        self.method = method
        self.path = path


class ResponseDecodeError(AiobatchError):
    """A 2xx body is not valid JSON, or does not match the expected model."""

    def __init__(self, message: str, *, status: int, method: str, path: str, snippet: str) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.snippet = snippet


class ContentEncodingError(ResponseDecodeError):
    """The body's ``Content-Encoding`` cannot be decoded: a coding the client did not
    ask for (``br`` or ``zstd`` without their decoder installed, ``compress``, stacked
    codings), or corrupt compressed data.  Never retried: the same answer would come
    back.  ``encoding`` names the coding; ``status`` is 0 when the response was
    refused while its head was read (before aiohttp exposed the status)."""

    def __init__(
        self, message: str, *, encoding: str, status: int = 0, method: str = "", path: str = ""
    ) -> None:
        super().__init__(message, status=status, method=method, path=path, snippet="")
        self.encoding = encoding


class APIStatusError(AiobatchError):
    """The server answered with a non-2xx status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: Any,
        method: str,
        path: str,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        #: Response headers (never request headers: no credentials here).
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        #: ``detail`` from the JSON error body: a string, or for 422 a list of
        #: ``{"loc", "msg", "type"}`` dicts; ``None`` when the body had none.
        self.detail = detail
        self.method = method
        self.path = path
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or expired."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404: unknown job or item (or a wrong base URL)."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422: the server rejected a parameter; ``detail`` lists which."""


class RateLimitError(APIStatusError):
    """429.  ``retry_after`` is the server's requested wait in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx."""


class PaginationError(AiobatchError):
    """A scan cannot go on without risking a lost or duplicated item.

    ``offset`` is the first offset that was not delivered: pass it as
    ``start_offset`` to resume once the cause is fixed.  A cursor scan resumes
    with ``start_token=next_token, start_skip=next_skip`` instead (``offset``
    then counts the items received).  A scan raises it with the consumer's own
    position: what the ``async for`` received, never what was fetched.
    """

    def __init__(
        self, message: str, *, offset: int, next_token: str | None = None, next_skip: int = 0
    ) -> None:
        super().__init__(message)
        self.offset = offset
        self.next_token = next_token
        self.next_skip = next_skip


class PageFetchError(PaginationError):
    """A page request failed for good (retries exhausted, or not retryable).

    The underlying error is ``__cause__`` and also ``error``.  Every page before
    ``offset`` has been delivered; none at or after it has.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int,
        error: AiobatchError,
        next_token: str | None = None,
        next_skip: int = 0,
    ) -> None:
        super().__init__(message, offset=offset, next_token=next_token, next_skip=next_skip)
        self.error = error


class DriftError(PaginationError):
    """The listing changed under a server-filtered scan: items may have been
    skipped or repeated (see ``filter_mode`` and ``on_drift``)."""


class JobWaitTimeoutError(AiobatchError, TimeoutError):
    """``jobs.wait`` / ``jobs.watch`` ran out of time before the job ended.

    ``status`` is the last status seen (``None`` if not even one poll answered).
    """

    def __init__(
        self, message: str, *, job_id: str, timeout: float, status: BatchJobStatus | None
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.timeout = timeout
        self.status = status


class JobFailedError(AiobatchError):
    """``jobs.wait(..., raise_on_failure=True)``: the job ended ``failed`` or
    ``cancelled``; ``status`` is its final status."""

    def __init__(self, message: str, *, status: BatchJobStatus) -> None:
        super().__init__(message)
        self.status = status
        self.job_id = status.job.id


class BatchWaitTimeoutError(AiobatchError, TimeoutError):
    """``batches.wait`` / ``batches.watch`` ran out of time before the batch ended.

    ``batch`` is the last state seen (``None`` if not even one poll answered).
    """

    def __init__(self, message: str, *, batch_id: str, timeout: float, batch: Batch | None) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.timeout = timeout
        self.batch = batch


class BatchFailedError(AiobatchError):
    """``batches.wait(..., raise_on_failure=True)``: the batch ended ``FAILED`` or
    ``CANCELLED``; ``batch`` is its final state."""

    def __init__(self, message: str, *, batch: Batch) -> None:
        super().__init__(message)
        self.batch = batch
        self.batch_id = batch.id


class BatchNotFinishedError(AiobatchError):
    """``batches.iter_results`` on a batch still running (its ``results`` are
    null until it ends): wait first (``wait=True`` or ``batches.wait``).
    ``batch`` is the state seen."""

    def __init__(self, message: str, *, batch: Batch) -> None:
        super().__init__(message)
        self.batch = batch
        self.batch_id = batch.id
        self.status = batch.status


class MissingJobConfigError(AiobatchError, ValueError):
    """``jobs.retry_failed`` found no job configuration to re-run the items with
    (no processing result carries one): pass ``job_config=``."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class RetryFailedError(AiobatchError):
    """``jobs.retry_failed`` stopped part-way: a create failed.

    ``plan`` says what happened to every chunk (``plan.created``: the jobs that
    exist, ``plan.pending``: chunks not created, ``plan.uncertain``: a chunk whose
    create may have made a job unheard of).  Call again with the same ``state=``
    (or pass ``plan`` back as ``already_created=``) to finish without creating a
    chunk twice.  The cause is ``error`` (and ``__cause__``).
    """

    def __init__(self, message: str, *, plan: RetryPlan, error: AiobatchError) -> None:
        super().__init__(message)
        self.plan = plan
        self.error = error


class WebhookVerificationError(AiobatchError, ValueError):
    """A webhook delivery failed its signature check (missing, malformed or wrong
    ``LC-Signature``).  The message never holds the secret or the expected digest."""


class WebhookPayloadError(WebhookVerificationError):
    """Kept for ``except`` clauses written against earlier versions: ``webhooks.parse``
    no longer raises it (the payload's shape is not published, so no shape is refused)."""


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    if status >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status, APIStatusError)

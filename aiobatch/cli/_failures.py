"""The one place errors become messages and exit codes.

Exit codes: 0 success, 1 the API, the network or the output failed (and
``jobs wait``: the job ended failed or cancelled), 2 usage (a bad option, no API
key, a parameter the API rejected with 422, an export that would overwrite a
file), 3 ``jobs wait`` timed out, 130 interrupted (Ctrl-C), 141 stdout closed early,
143 terminated (SIGTERM).

Failures are read from the library's typed exceptions and their attributes,
never from message text.
"""

from __future__ import annotations

from .._errors import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BatchWaitTimeoutError,
    ConfigurationError,
    InternalServerError,
    JobWaitTimeoutError,
    MissingAPIKeyError,
    NotFoundError,
    PageFetchError,
    PermissionDeniedError,
    RateLimitError,
    RetryFailedError,
    UnprocessableEntityError,
)
from .._paging import DriftError
from .._protocol import describe_detail
from ._context import CliError, Context

__all__ = [
    "EXIT_API",
    "EXIT_INTERRUPTED",
    "EXIT_PIPE",
    "EXIT_TERMINATED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "describe",
    "is_permanent",
]

EXIT_API, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED, EXIT_PIPE = 1, 2, 3, 130, 141
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process it ended

#: Answers that the same request will get again, however often it is retried.
_PERMANENT = (
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    UnprocessableEntityError,
)


def _cause(exc: BaseException) -> BaseException:
    """The API error behind a failed page (a ``PageFetchError`` wraps it)."""
    return exc.error if isinstance(exc, PageFetchError) else exc


def is_permanent(exc: BaseException) -> bool:
    """True when retrying (``--resume``) cannot help: 401, 403, 404, 422.
    Connection failures, 5xx, exhausted 429s and drift are transient."""
    return isinstance(_cause(exc), _PERMANENT)


def describe(exc: BaseException, ctx: Context) -> tuple[str, int]:
    """One line saying what went wrong (and what to fix), and the exit code."""
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, MissingAPIKeyError):
        return (
            "no API key: pass --api-key or set LLAMA_CLOUD_API_KEY "
            "(or LLAMA_PARSE_API_KEY); `aiobatch demo` needs none",
            EXIT_USAGE,
        )
    if isinstance(exc, ConfigurationError):
        return f"invalid configuration: {exc}", EXIT_USAGE
    if isinstance(exc, PageFetchError):
        return describe(exc.error, ctx)
    if isinstance(exc, RetryFailedError):
        message, code = describe(exc.error, ctx)
        plan = exc.plan
        unknown = sum(c.size for c in plan.uncertain)
        doubt = f", {unknown:,} in a create that may have made its job" if unknown else ""
        return (
            f"{message}; {len(plan.created)} new job(s) created, "
            f"{sum(c.size for c in plan.pending):,} item(s) not submitted{doubt}: run the "
            "same command again to create only what is missing",
            code,
        )
    if isinstance(exc, BatchWaitTimeoutError):
        last_seen = f" (last status: {exc.batch.status})" if exc.batch is not None else ""
        return (
            f"timed out: batch {exc.batch_id} did not end within {exc.timeout:g} s{last_seen}",
            EXIT_TIMEOUT,
        )
    if isinstance(exc, JobWaitTimeoutError):
        last = exc.status
        where = (
            f" (last status: {last.job.status}, {last.progress_percentage:.1f}%)" if last else ""
        )
        return f"timed out: job {exc.job_id} did not end within {exc.timeout:g} s{where}", (
            EXIT_TIMEOUT
        )
    if isinstance(exc, DriftError):
        # What changed is the scan's own record (ScanProgress.drift), not the text.
        seen = ctx.scan.drift if ctx.scan is not None else []
        what = f" ({seen[-1]})" if seen else ""
        return (
            f"the listing changed during the scan{what}; items may be skipped or repeated. "
            "Re-run once the job has finished, or with --filter-mode client",
            EXIT_API,
        )
    if isinstance(exc, UnprocessableEntityError):
        # The API refused a parameter of this command line: a usage error.
        return _describe_status(exc, ctx), EXIT_USAGE
    if isinstance(exc, APIStatusError):
        return _describe_status(exc, ctx), EXIT_API
    if isinstance(exc, APITimeoutError):
        return f"timed out waiting for the API ({exc})", EXIT_API
    if isinstance(exc, APIConnectionError):
        return f"cannot reach the API: {exc}", EXIT_API
    if isinstance(exc, AiobatchError):
        return str(exc), EXIT_API
    if isinstance(exc, UnicodeEncodeError):  # before ValueError, its base class
        return (
            f"the output cannot be encoded in the terminal's encoding ({exc.encoding}): "
            "set PYTHONIOENCODING=utf-8, or write a file with `aiobatch items export -o FILE`",
            EXIT_API,
        )
    if isinstance(exc, OSError):  # the output file: a missing directory, a full disk...
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_API
    if isinstance(exc, ValueError | TypeError):
        # The library checks its arguments before any request is sent.
        return f"invalid argument: {exc}", EXIT_USAGE
    return (
        f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
        EXIT_API,
    )


def _tries(exc: AiobatchError) -> str:
    """What was tried, as the retry loop recorded it (a create is sent once)."""
    return f"after {exc.attempts} attempts" if exc.attempts > 1 else "sent once, not retried"


def _detail_text(exc: APIStatusError) -> str:
    return describe_detail(exc.detail) or str(exc)


def _rejects(exc: APIStatusError, param: str) -> bool:
    """Whether a 422's ``detail`` (``[{"loc": [...], ...}]``) names ``param``."""
    detail = exc.detail if isinstance(exc.detail, list) else []
    return any(isinstance(d, dict) and param in (d.get("loc") or ()) for d in detail)


def _describe_status(exc: APIStatusError, ctx: Context) -> str:
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: check {ctx.key_source()}"
    if isinstance(exc, PermissionDeniedError):
        what = ctx.subject or exc.path
        return f"permission denied for {what}: check the key's organization / project"
    if isinstance(exc, NotFoundError):
        return f"{ctx.subject} not found" if ctx.subject else f"not found: {exc.path}"
    detail = _detail_text(exc)
    if isinstance(exc, UnprocessableEntityError):
        hint = ""
        if _rejects(exc, "limit") and ctx.opt("page_size") and ctx.opt("limit") is None:
            hint = f" (--page-size {ctx.opt('page_size')} sets the limit of each request)"
        return f"the API rejected the request: {detail}{hint}"
    if isinstance(exc, RateLimitError):
        return "rate limited by the API, retries exhausted; try a lower --concurrency"
    if isinstance(exc, InternalServerError):
        return f"the API failed with {exc.status_code} ({_tries(exc)}): {detail}"
    return f"the API answered {exc.status_code}: {detail}"

"""The parser, the dispatcher and the one place errors become exit codes.

Exit codes: 0 success, 1 the API or the network failed, 2 usage (bad option,
unknown status, no API key), 130 interrupted (Ctrl-C), 141 stdout closed early.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import IO

from .. import __version__
from .._config import KEY_ENV_VARS
from .._errors import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    PageFetchError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from .._paging import DriftError
from .._protocol import describe_detail
from . import _demo, _export, _items, _jobs
from ._context import (
    CliError,
    Context,
    HelpFormatter,
    connection_options,
    general_options,
    scan_options,
)

__all__ = ["build_parser", "main", "run"]

EXIT_API, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 1, 2, 130, 141


def build_parser() -> argparse.ArgumentParser:
    conn, general = connection_options(), general_options()
    common = [conn, general]
    root = argparse.ArgumentParser(
        prog="aiobatch",
        description="Work with LlamaCloud batch jobs from a terminal: list, summarise and "
        "export items (fast, concurrent, in order), follow and cancel jobs.",
        parents=common,
        formatter_class=HelpFormatter,
        epilog="""examples:
  aiobatch demo                                            # no account needed
  aiobatch items list --job-id bjb-123 --status failed
  aiobatch items summary --job-id bjb-123
  aiobatch items export --job-id bjb-123 --status failed -o failed.jsonl
  aiobatch jobs watch --job-id bjb-123

The API key comes from --api-key, else $LLAMA_CLOUD_API_KEY, else
$LLAMA_PARSE_API_KEY; the base URL from --base-url, else $LLAMA_CLOUD_BASE_URL.
Data goes to stdout; progress and diagnostics to stderr.
Exit codes: 0 ok, 1 API/network error, 2 usage error, 130 interrupted.""",
    )
    root.add_argument("--version", action="version", version=f"aiobatch {__version__}")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True)
    isub = _items.register(sub, common, scan_options())
    _export.register(isub, common, scan_options())
    _jobs.register(sub, common)
    _demo.register(sub, general)
    return root


# --- secrets ----------------------------------------------------------------


def _secrets(argv: Sequence[str]) -> list[str]:
    """Every API key this run may hold, so no message can echo one."""
    found = [os.environ[v] for v in KEY_ENV_VARS if os.environ.get(v)]
    for k, arg in enumerate(argv):
        if arg == "--api-key" and k + 1 < len(argv):
            found.append(argv[k + 1])
        elif arg.startswith("--api-key="):
            found.append(arg.partition("=")[2])
    return sorted({s for s in found if s}, key=len, reverse=True)


def _redact(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__("aiobatch: debug: %(name)s: %(message)s")
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record), self._secrets)


@contextlib.contextmanager
def _debug_logging(ctx: Context, secrets: Sequence[str]) -> Iterator[None]:
    if not ctx.debug:
        yield
        return
    handler = logging.StreamHandler(ctx.stderr)
    handler.setFormatter(_RedactingFormatter(secrets))
    logger = logging.getLogger("aiobatch")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# --- errors -----------------------------------------------------------------


def describe(exc: BaseException, ctx: Context) -> tuple[str, int]:
    """One line saying what went wrong, and the exit code."""
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, ConfigurationError):
        if "no API key" in str(exc):
            return (
                "no API key: pass --api-key or set LLAMA_CLOUD_API_KEY "
                "(or LLAMA_PARSE_API_KEY); `aiobatch demo` needs none",
                EXIT_USAGE,
            )
        return f"invalid configuration: {exc}", EXIT_USAGE
    if isinstance(exc, PageFetchError):
        return describe(exc.error, ctx)
    if isinstance(exc, DriftError):
        return (
            f"{str(exc).split('; items may')[0]}; items may be skipped or repeated. "
            "Re-run once the job has finished, or with --filter-mode client",
            EXIT_API,
        )
    if isinstance(exc, APIStatusError):
        return _describe_status(exc, ctx), EXIT_API
    if isinstance(exc, APITimeoutError):
        return f"timed out waiting for the API ({exc})", EXIT_API
    if isinstance(exc, APIConnectionError):
        return f"cannot reach the API: {exc}", EXIT_API
    if isinstance(exc, AiobatchError):
        return str(exc), EXIT_API
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


def _detail_text(exc: APIStatusError) -> str:
    return describe_detail(exc.detail) or str(exc)


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
        return f"the API rejected the request: {detail}"
    if isinstance(exc, RateLimitError):
        return "rate limited by the API, retries exhausted; try a lower --concurrency"
    if isinstance(exc, InternalServerError):
        return f"the API failed with {exc.status_code} (after retries): {detail}"
    return f"the API answered {exc.status_code}: {detail}"


# --- running ----------------------------------------------------------------


def _parse(
    argv: Sequence[str], stdout: IO[str], stderr: IO[str], secrets: Sequence[str]
) -> argparse.Namespace | int:
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    finally:
        if err.getvalue():
            stderr.write(_redact(err.getvalue(), secrets))
            stderr.flush()


async def run(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run one command line inside the current event loop; the exit code.

    Cancellation (Ctrl-C) propagates; every other failure is reported as one
    line on ``stderr`` (with the traceback under ``--debug``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    secrets = _secrets(args)
    parsed = _parse(args, out, err, secrets)
    if isinstance(parsed, int):
        return parsed
    ctx = Context(parsed, out, err)
    with _debug_logging(ctx, secrets):
        try:
            code: int = await parsed.handler(ctx)
        except BrokenPipeError:
            return EXIT_PIPE
        except Exception as exc:
            message, code = describe(exc, ctx)
            if ctx.debug:
                tb = "".join(traceback.format_exception(exc))
                err.write(_redact(tb, secrets))
            err.write(_redact(f"aiobatch: error: {message}\n", secrets))
            err.flush()
    return code


def main(argv: list[str] | None = None) -> int:
    """The ``aiobatch`` console script."""
    try:
        code = asyncio.run(run(argv))
    except KeyboardInterrupt:
        sys.stderr.write("\naiobatch: interrupted\n")
        return EXIT_INTERRUPTED
    if code == EXIT_PIPE:
        # The reader went away (`| head`): silence the final flush of stdout.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    return code

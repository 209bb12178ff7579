"""The parser and the dispatcher (errors become exit codes in ``_failures``).

Exit codes: 0 success, 1 the API, the network or the output failed, 2 usage
(bad option, unknown status, no API key, a parameter the API rejected),
130 interrupted (Ctrl-C), 141 stdout closed early (a broken pipe).
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
from typing import IO, cast

from .. import __version__
from .._config import KEY_ENV_VARS
from .._errors import ConfigurationError
from .._logs import env_level
from . import _batches, _demo, _directories, _download, _export, _items, _jobs
from ._context import (
    CliError,
    Context,
    HelpFormatter,
    connection_options,
    general_options,
    scan_options,
)
from ._failures import EXIT_INTERRUPTED, EXIT_PIPE, EXIT_USAGE, describe
from ._output import terminal_safe

__all__ = ["build_parser", "main", "run"]


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
  aiobatch jobs wait --job-id bjb-123 --timeout 3600

The API key comes from --api-key, else $LLAMA_CLOUD_API_KEY, else
$LLAMA_PARSE_API_KEY; the base URL from --base-url, else $LLAMA_CLOUD_BASE_URL.
Data goes to stdout; progress and diagnostics to stderr.
Exit codes: 0 ok, 1 API/network/output error (`jobs wait`: the job failed
or was cancelled), 2 usage error (also a parameter the API rejected),
3 `jobs wait` timed out, 130 interrupted, 141 stdout closed early.""",
    )
    root.add_argument("--version", action="version", version=f"aiobatch {__version__}")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True)
    isub = _items.register(sub, common, scan_options())
    _export.register(isub, common, scan_options())
    _download.register(isub, common)
    _jobs.register(sub, common)
    _batches.register(sub, common)  # v2: /api/v2/batches
    _directories.register(sub, common)
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


def _for_stderr(text: str, secrets: Sequence[str]) -> str:
    """Diagnostics as written to stderr: no key, no control character (a line at
    a time: the line breaks stay)."""
    lines = _redact(text, secrets).split("\n")
    return "\n".join(terminal_safe(line) for line in lines)


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Sequence[str], fmt: str) -> None:
        super().__init__(fmt)
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return _for_stderr(super().format(record), self._secrets)


@contextlib.contextmanager
def _debug_logging(ctx: Context, secrets: Sequence[str]) -> Iterator[None]:
    fmt = "aiobatch: debug: %(name)s: %(message)s"
    level: int | None = logging.DEBUG
    if not ctx.debug:
        # $LLAMA_CLOUD_LOG through the CLI's own (redacting, terminal-safe)
        # handler; a bad value is reported when the client reads it.
        fmt = "aiobatch: %(levelname)s: %(name)s: %(message)s"
        with contextlib.suppress(ConfigurationError):
            level = env_level()
    if level is None:
        yield
        return
    handler = logging.StreamHandler(ctx.stderr)
    handler.setFormatter(_RedactingFormatter(secrets, fmt))
    logger = logging.getLogger("aiobatch")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


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
    except CliError as exc:  # --help into a closed stdout
        err.write(f"aiobatch: error: {exc}\n")
        return exc.exit_code
    finally:
        if err.getvalue():
            stderr.write(_for_stderr(err.getvalue(), secrets))
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
    out: IO[str] = stdout or sys.stdout or _closed("standard output")  # `>&-`
    err = stderr or sys.stderr or io.StringIO()  # `2>&-`: nowhere to report to
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
                err.write(_for_stderr(tb, secrets))
            err.write(f"aiobatch: error: {_for_stderr(message, secrets)}\n")
            err.flush()
    return code


def _closed(name: str) -> IO[str]:
    return cast(IO[str], _ClosedStream(name))


class _ClosedStream(io.TextIOBase):
    """Stands for a standard stream the shell closed (``sys.stdout is None``):
    commands that do not write to it run; the first write is a one-line error."""

    def __init__(self, name: str) -> None:
        self._name = name

    def write(self, s: str) -> int:
        raise CliError(f"cannot write to {self._name}: it is closed")

    def isatty(self) -> bool:
        return False


def main(argv: list[str] | None = None) -> int:
    """The ``aiobatch`` console script."""
    try:
        code = asyncio.run(run(argv))
    except KeyboardInterrupt:
        if sys.stderr is not None:
            sys.stderr.write("\naiobatch: interrupted\n")
        return EXIT_INTERRUPTED
    if code == EXIT_PIPE and sys.stdout is not None:
        # The reader went away (`| head`): silence the final flush of stdout.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    return code

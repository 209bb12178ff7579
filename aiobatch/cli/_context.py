"""What every command gets: parsed options, the two streams, a client factory,
and the shared option groups (named as in the official ``llamacloud`` CLI)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .._client import BatchClient
from .._config import KEY_ENV_VARS, env_int
from .._errors import ConfigurationError
from .._paging import ScanProgress
from ..models import ItemStatus
from ._output import Progress, is_tty, terminal_safe

__all__ = [
    "ITEM_STATUSES",
    "MAX_POLL_INTERVAL",
    "CliError",
    "Context",
    "HelpFormatter",
    "UsageError",
    "add_poll_options",
    "concurrency_int",
    "connection_options",
    "general_options",
    "non_negative_float",
    "non_negative_int",
    "page_size_int",
    "positive_float",
    "positive_int",
    "scan_options",
]

ITEM_STATUSES = [s.value for s in ItemStatus]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs (examples) keep their lines; one-paragraph descriptions are wrapped."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


class CliError(Exception):
    """A failure to report as one line on stderr, with an exit code."""

    exit_code = 1


class UsageError(CliError):
    """The command line asks for something that cannot be done (exit code 2)."""

    exit_code = 2


def _shown(text: str) -> str:
    """An argument as quoted in a usage error: a 5000-digit number is clipped."""
    return text if len(text) <= 24 else text[:20] + "..."


def _int_between(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {_shown(text)!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {_shown(text)}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum:,}, got {_shown(text)}")
        return value

    return parse


#: Upper bounds of the scan options: far above anything useful, far below a
#: value that would make the scan plan (or the event loop) choke.
MAX_CONCURRENCY, MAX_PAGE_SIZE = 1024, 100_000

positive_int = _int_between(1)
non_negative_int = _int_between(0)
concurrency_int = _int_between(1, MAX_CONCURRENCY)
page_size_int = _int_between(1, MAX_PAGE_SIZE)


def _float_above(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {_shown(text)!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {_shown(text)}")
        if value < minimum or (value == minimum and not inclusive):
            op = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"must be {op} {minimum:g}, got {_shown(text)}")
        return value

    return parse


positive_float = _float_above(0.0, inclusive=False)
non_negative_float = _float_above(0.0, inclusive=True)

#: The slowest polling of the wait / watch commands while nothing moves.
MAX_POLL_INTERVAL = 30.0


def add_poll_options(p: argparse.ArgumentParser, noun: str, *, timeout: bool) -> None:
    """``--interval`` (and with ``timeout``, ``--timeout`` as the whole wait) of
    the commands that poll a job or a batch until it ends."""
    p.add_argument(
        "--interval",
        type=positive_float,
        default=2.0,
        metavar="SECONDS",
        help=f"seconds between polls while the {noun} moves (default: 2; up to "
        f"{MAX_POLL_INTERVAL:g} while it does not)",
    )
    if timeout:
        p.add_argument(
            "--timeout",
            dest="wait_timeout",
            type=non_negative_float,
            default=None,
            metavar="SECONDS",
            help="give up after this many seconds, with exit code 3 (default: wait for ever)",
        )


# Options shared by every command.  They are accepted before or after the
# command name, so their defaults are SUPPRESS: a subcommand that did not see an
# option must not overwrite the value given at the top level.
_S = argparse.SUPPRESS


def connection_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument(
        "--api-key", default=_S, metavar="KEY", help="API key (default: $LLAMA_CLOUD_API_KEY)"
    )
    g.add_argument(
        "--base-url",
        default=_S,
        metavar="URL",
        help="API base URL (default: $LLAMA_CLOUD_BASE_URL)",
    )
    g.add_argument("--organization-id", default=_S, metavar="ID")
    g.add_argument("--project-id", default=_S, metavar="ID")
    g.add_argument(
        "--max-retries", default=_S, type=non_negative_int, metavar="N", help="(default: 5)"
    )
    g.add_argument(
        "--timeout",
        default=_S,
        type=positive_float,
        metavar="SECONDS",
        help="per-request timeout (default: 60)",
    )
    g.add_argument(
        "--max-concurrency",
        default=_S,
        type=concurrency_int,
        metavar="N",
        help="requests in flight, all scans and calls together (default: 64; halved "
        "while the API answers 429)",
    )
    g.add_argument(
        "--rate-limit",
        default=_S,
        type=positive_float,
        metavar="PER_SECOND",
        help="at most this many requests per second (default: unpaced)",
    )
    return p


def general_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("general")
    g.add_argument(
        "-q", "--quiet", action="store_true", default=_S, help="no progress or notes on stderr"
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=_S,
        help="log requests and show tracebacks (the API key is never shown)",
    )
    return p


def scan_options(page_size: int = 500, concurrency: int = 8) -> argparse.ArgumentParser:
    # The library's defaults from the environment; a bad value is reported when
    # the client reads it, as one error naming the variable.
    with contextlib.suppress(ConfigurationError):
        page_size = env_int(os.environ, "LLAMA_CLOUD_PAGE_SIZE", minimum=1) or page_size
        concurrency = (
            env_int(os.environ, "LLAMA_CLOUD_SCAN_CONCURRENCY", minimum=1, maximum=MAX_CONCURRENCY)
            or concurrency
        )
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("streaming")
    g.add_argument(
        "--page-size",
        type=page_size_int,
        default=page_size,
        metavar="N",
        help=f"items per request (default: {page_size})",
    )
    g.add_argument(
        "--concurrency",
        type=concurrency_int,
        default=concurrency,
        metavar="N",
        help=f"page requests in flight (default: {concurrency})",
    )
    g.add_argument(
        "--filter-mode",
        choices=["auto", "server", "client"],
        default="auto",
        help="where --status is applied: 'auto' filters on the server once the job "
        "has finished and locally while it runs (no skipped or repeated items)",
    )
    return p


@dataclass
class Context:
    args: argparse.Namespace
    stdout: IO[str]
    stderr: IO[str]
    #: What a 404 means for this command ("job bjb-..."), set by the command.
    subject: str | None = None
    #: The counters of the command's scan of items, once one started.
    scan: ScanProgress | None = None

    def opt(self, name: str, default: Any = None) -> Any:
        return getattr(self.args, name, default)

    @property
    def quiet(self) -> bool:
        return bool(self.opt("quiet", False))

    @property
    def debug(self) -> bool:
        return bool(self.opt("debug", False))

    def note(self, message: str) -> None:
        """A diagnostic for people (stderr), silenced by ``--quiet``."""
        if not self.quiet:
            self.stderr.write(terminal_safe(message) + "\n")
            self.stderr.flush()

    def warn(self, message: str) -> None:
        self.stderr.write(f"aiobatch: warning: {terminal_safe(message)}\n")
        self.stderr.flush()

    @property
    def interactive(self) -> bool:
        """Progress bars only when stderr is a terminal (and not --quiet)."""
        return not self.quiet and is_tty(self.stderr)

    def progress(self, description: str, unit: str = "items") -> Progress:
        return Progress(self.stderr, description, enabled=self.interactive, unit=unit)

    def key_source(self) -> str:
        """Where the API key came from, to point at it when it is refused."""
        if self.opt("api_key"):
            return "--api-key"
        return next((v for v in KEY_ENV_VARS if os.environ.get(v)), KEY_ENV_VARS[0])

    def client(self) -> BatchClient:
        timeout = self.opt("timeout")
        budget: dict[str, Any] = {}
        if self.opt("max_concurrency") is not None:
            budget["max_concurrency"] = self.opt("max_concurrency")
        if self.opt("rate_limit") is not None:
            budget["rate_limit"] = self.opt("rate_limit")
        return BatchClient(
            self.opt("api_key") or None,
            base_url=self.opt("base_url") or None,
            organization_id=self.opt("organization_id"),
            project_id=self.opt("project_id"),
            max_retries=self.opt("max_retries"),
            timeout=float(timeout) if timeout is not None else None,
            **budget,
        )

"""Client configuration: where to connect, how long to wait, how much to read.

Config objects instead of long argument lists (httpx's habit): ``Timeout`` and
``Limits`` are small frozen dataclasses; ``ClientConfig`` is what the client
resolved from its arguments and the environment, once, at construction.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._checks import check_seconds
from ._errors import ConfigurationError, MissingAPIKeyError
from ._logs import apply_log_env
from ._paging.types import MAX_CONCURRENCY, ScanOptions
from ._retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_VARS",
    "EU_BASE_URL",
    "ClientConfig",
    "Limits",
    "Timeout",
    "env_int",
    "env_seconds",
    "resolve_budget",
]

DEFAULT_BASE_URL = "https://api.cloud.llamaindex.ai"
EU_BASE_URL = "https://api.cloud.eu.llamaindex.ai"
KEY_ENV_VARS = ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY")
BASE_URL_ENV_VAR = "LLAMA_CLOUD_BASE_URL"
HEADERS_ENV_VAR = "LLAMA_CLOUD_CUSTOM_HEADERS"
#: Headers the client owns: a custom one must not replace the credential, or
#: the framing and codings the transport relies on.
_OWN_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "accept-encoding",
        "connection",
        "cookie",
    }
)
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: What operators tune without code (the official SDK's prefix; arguments win).
ENV_VARS = {
    "LLAMA_CLOUD_TIMEOUT": "seconds one attempt may take (Timeout.total)",
    "LLAMA_CLOUD_MAX_RETRIES": "retries of a failed request (RetryPolicy.max_retries)",
    "LLAMA_CLOUD_MAX_CONCURRENCY": "requests of the client in flight at most",
    "LLAMA_CLOUD_RATE_LIMIT": "requests per second at most",
    "LLAMA_CLOUD_PAGE_SIZE": "items per page of a job's item scans (ScanOptions.page_size)",
    "LLAMA_CLOUD_SCAN_CONCURRENCY": "page requests in flight per item scan of a job",
    "LLAMA_CLOUD_CUSTOM_HEADERS": "extra headers for the API host, one `Name: value` a line",
    "LLAMA_CLOUD_LOG": "level of the aiobatch loggers: debug, info, warning or error",
}

# A header value must not smuggle CR/LF or other controls; keys are printable ASCII.
_KEY_RE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds.  ``total`` bounds one attempt (not the retries around it, nor the
    wait for a free pooled connection when more requests run than
    ``Limits.max_connections`` allows: that queueing is the client's own)."""

    total: float | None = 60.0
    connect: float | None = 5.0
    read: float | None = 30.0

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read"):
            value = getattr(self, name)
            if value is not None:
                check_seconds(f"Timeout.{name}", value, none_ok=True)


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection pool and body-size caps."""

    max_connections: int = 100
    max_connections_per_host: int = 0  # 0: no per-host cap beyond max_connections
    #: Bodies above this many bytes (after decompression) are refused unread.
    max_body_bytes: int = 32 * 1024 * 1024
    keepalive_timeout: float = 15.0
    #: A result fetched through a presigned URL (too large to come inline) is
    #: streamed to a temporary file, up to this many bytes.
    max_download_bytes: int = 4 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ConfigurationError("Limits.max_connections must be >= 1")
        if self.max_connections_per_host < 0:
            raise ConfigurationError("Limits.max_connections_per_host must be >= 0")
        if self.max_body_bytes < 1024:
            raise ConfigurationError("Limits.max_body_bytes must be >= 1024")
        if self.max_download_bytes < 1024:
            raise ConfigurationError("Limits.max_download_bytes must be >= 1024")
        check_seconds("Limits.keepalive_timeout", self.keepalive_timeout)


def _raw(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    return raw or None


def _bad(name: str, expected: str, raw: str) -> ConfigurationError:
    # A short value is shown; a long one may be a secret pasted into the wrong
    # variable, so only its length is.
    shown = repr(raw) if len(raw) <= 12 else f"a {len(raw)}-character value"
    return ConfigurationError(f"{name} must be {expected}, got {shown}")


def env_int(
    env: Mapping[str, str], name: str, *, minimum: int, maximum: int | None = None
) -> int | None:
    """An integer variable (None when unset or empty); out of range: the error names it."""
    raw = _raw(env, name)
    if raw is None:
        return None
    expected = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum else "")
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, expected, raw) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise _bad(name, expected, raw)
    return value


def env_seconds(env: Mapping[str, str], name: str, *, what: str = "seconds") -> float | None:
    """A positive finite number variable (None when unset or empty)."""
    raw = _raw(env, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _bad(name, f"a number of {what} > 0", raw)
    return value


def scan_defaults(env: Mapping[str, str] | None = None) -> ScanOptions:
    """An item scan's defaults: ``ScanOptions()`` with ``LLAMA_CLOUD_PAGE_SIZE`` and
    ``LLAMA_CLOUD_SCAN_CONCURRENCY`` when set."""
    env = os.environ if env is None else env
    changes: dict[str, int] = {}
    page_size = env_int(env, "LLAMA_CLOUD_PAGE_SIZE", minimum=1)
    if page_size is not None:
        changes["page_size"] = page_size
    concurrency = env_int(env, "LLAMA_CLOUD_SCAN_CONCURRENCY", minimum=1, maximum=MAX_CONCURRENCY)
    if concurrency is not None:
        changes["concurrency"] = concurrency
    return ScanOptions(**changes)  # type: ignore[arg-type]


class _Secret:
    """Holds the API key; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class ClientConfig:
    api_key: _Secret = field(repr=False)
    base_url: str
    organization_id: str | None = None
    project_id: str | None = None
    timeout: Timeout = field(default_factory=Timeout)
    limits: Limits = field(default_factory=Limits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = "aiobatch"
    #: Extra headers for the API's host (``LLAMA_CLOUD_CUSTOM_HEADERS``); values
    #: may be credentials of a proxy, so they stay out of the repr.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: Item scans' defaults (``LLAMA_CLOUD_PAGE_SIZE``, ``LLAMA_CLOUD_SCAN_CONCURRENCY``).
    scan_defaults: ScanOptions = field(default_factory=ScanOptions)

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        organization_id: str | None,
        project_id: str | None,
        timeout: Timeout | float | None,
        limits: Limits | None,
        retry: RetryPolicy | None,
        max_retries: int | None,
        env: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        env = os.environ if env is None else env
        apply_log_env(env)
        key = api_key or next((env[v] for v in KEY_ENV_VARS if env.get(v)), None)
        if not key:
            raise MissingAPIKeyError(
                "no API key: pass api_key=... or set LLAMA_CLOUD_API_KEY (or LLAMA_PARSE_API_KEY)"
            )
        if not _KEY_RE.fullmatch(key):
            raise ConfigurationError(
                "the API key contains whitespace or control characters; check how it was set"
            )
        url = normalise_base_url(base_url or env.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL)
        if timeout is None and (seconds := env_seconds(env, "LLAMA_CLOUD_TIMEOUT")) is not None:
            timeout = Timeout(total=seconds)
        if timeout is not None and not isinstance(timeout, Timeout):
            # A bare number is ``Timeout(total=...)``; checked here so the message
            # names the argument the caller actually passed.
            timeout = Timeout(total=check_seconds("timeout", timeout, none_ok=True))
        if max_retries is None and retry is None:
            # A policy passed in says how often to retry: the variable is a default.
            max_retries = env_int(env, "LLAMA_CLOUD_MAX_RETRIES", minimum=0)
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = policy.with_max_retries(max_retries)
        from . import __version__

        return cls(
            api_key=_Secret(key),
            base_url=url,
            organization_id=organization_id or None,
            project_id=project_id or None,
            timeout=Timeout() if timeout is None else timeout,
            limits=limits or Limits(),
            retry=policy,
            user_agent=f"aiobatch/{__version__}",
            headers=parse_custom_headers(env.get(HEADERS_ENV_VAR)),
            scan_defaults=scan_defaults(env),
        )


def parse_custom_headers(raw: str | None) -> tuple[tuple[str, str], ...]:
    """``LLAMA_CLOUD_CUSTOM_HEADERS`` read as the official SDK reads it: one
    ``Name: value`` a line, split at the first colon, both sides stripped, lines
    without a colon ignored, a later line winning.  Refused (naming the line, not
    the value, which may be a secret): a name that is not an HTTP token, a value
    with control characters, and a header the client owns (``Authorization``...)."""
    if not raw:
        return ()
    found: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(raw.split("\n"), 1):
        colon = line.find(":")
        if colon < 0:
            continue
        name, value = line[:colon].strip(), line[colon + 1 :].strip()
        where = f"{HEADERS_ENV_VAR} line {number}"
        check_header(name, value, where)
        if name.lower() in _OWN_HEADERS:
            raise ConfigurationError(f"{where}: {name} is set by the client and cannot be replaced")
        found[name.lower()] = (name, value)
    return tuple(found.values())


def check_header(name: str, value: str, where: str) -> None:
    """An HTTP header line that cannot smuggle another (named, its value never shown)."""
    if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
        raise ConfigurationError(f"{where}: {str(name)[:40]!r} is not a valid header name")
    if not isinstance(value, str):
        raise ConfigurationError(f"{where}: the value of {name} must be a str")
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise ConfigurationError(f"{where}: the value of {name} has control characters")


def normalise_base_url(url: str) -> str:
    if not isinstance(url, str) or any(c.isspace() or not c.isprintable() for c in url):
        # urlsplit silently drops tabs/newlines, so they would reach the wire.
        raise ConfigurationError("base_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (validates the port: range and digits)
    except ValueError as exc:
        raise ConfigurationError(f"base_url is not a valid URL ({exc})") from None
    if parts.username or parts.password:
        raise ConfigurationError("base_url must not carry credentials; use api_key")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL with a host, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"base_url must not have a query or fragment, got {url!r}")
    return url.rstrip("/")


def resolve_budget(
    max_concurrency: int | None,
    rate_limit: float | None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, float | None]:
    """The budget's width and pace: arguments, else ``LLAMA_CLOUD_MAX_CONCURRENCY`` /
    ``LLAMA_CLOUD_RATE_LIMIT``, else the defaults.  A bad variable is named."""
    from ._budget import DEFAULT_MAX_CONCURRENCY, DEFAULT_RATE_LIMIT

    env = os.environ if env is None else env
    if max_concurrency is None:
        max_concurrency = env_int(env, "LLAMA_CLOUD_MAX_CONCURRENCY", minimum=1)
    if rate_limit is None:
        rate_limit = env_seconds(env, "LLAMA_CLOUD_RATE_LIMIT", what="requests per second")
    return (
        DEFAULT_MAX_CONCURRENCY if max_concurrency is None else max_concurrency,
        DEFAULT_RATE_LIMIT if rate_limit is None else rate_limit,
    )

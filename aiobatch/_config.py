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

from ._errors import ConfigurationError, MissingAPIKeyError
from ._retry import RetryPolicy

__all__ = ["DEFAULT_BASE_URL", "EU_BASE_URL", "ClientConfig", "Limits", "Timeout", "resolve_budget"]

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


def check_seconds(name: str, value: object, *, none_ok: bool = False) -> float:
    """A timeout: a finite real number of seconds above 0 (aiohttp turns ``inf`` into
    an ``OverflowError`` on every request, and ``nan``, ``0`` or ``True`` make no sense)."""
    expected = "a finite number of seconds > 0" + (", or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be {expected}; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be {expected}; got {value!r}")
    return float(value)


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
        if timeout is not None and not isinstance(timeout, Timeout):
            # A bare number is ``Timeout(total=...)``; checked here so the message
            # names the argument the caller actually passed.
            timeout = Timeout(total=check_seconds("timeout", timeout, none_ok=True))
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
        raw = env.get("LLAMA_CLOUD_MAX_CONCURRENCY", "").strip()
        try:
            max_concurrency = int(raw) if raw else DEFAULT_MAX_CONCURRENCY
        except ValueError:
            raise ConfigurationError(
                f"LLAMA_CLOUD_MAX_CONCURRENCY must be an integer >= 1, got {raw[:40]!r}"
            ) from None
        if max_concurrency < 1:
            raise ConfigurationError(
                f"LLAMA_CLOUD_MAX_CONCURRENCY must be an integer >= 1, got {raw[:40]!r}"
            )
    if rate_limit is None:
        raw = env.get("LLAMA_CLOUD_RATE_LIMIT", "").strip()
        if raw:
            try:
                rate_limit = float(raw)
            except ValueError:
                rate_limit = math.nan
            if not (math.isfinite(rate_limit) and rate_limit > 0):
                raise ConfigurationError(
                    "LLAMA_CLOUD_RATE_LIMIT must be a number of requests per second > 0, "
                    f"got {raw[:40]!r}"
                )
        else:
            rate_limit = DEFAULT_RATE_LIMIT
    return max_concurrency, rate_limit

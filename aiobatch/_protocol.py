"""Sans-I/O protocol logic, as in gidgethub's ``sansio``: pure functions that build
requests, check arguments and read responses.  No network, no event loop, no
HTTP library's types: a response is ``(status, headers as a plain Mapping,
body)``, and ``decipher`` turns it into a model or the exception it stands for.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec

from . import models
from ._checks import check_int
from ._errors import (
    APIConnectionError,
    APIStatusError,
    RateLimitError,
    ResponseDecodeError,
    status_error_class,
)
from ._retry import parse_retry_after

__all__ = [
    "Headers",
    "Params",
    "Query",
    "api_path",
    "check_body_id",
    "check_id",
    "check_limit",
    "check_offset",
    "check_only",
    "check_status",
    "decipher",
    "decode_body",
    "did_you_mean",
    "make_status_error",
    "path",
    "query",
]

T = TypeVar("T")
Params = dict[str, str]
#: What a request may carry: an array parameter is a tuple, sent repeated
#: (``expand=a&expand=b``), never comma-joined (FastAPI does not split commas).
Query = Mapping[str, str | tuple[str, ...]]
E = TypeVar("E", bound=enum.Enum)

API = "/api/v1/beta/batch-processing"
#: Roots of the neighbouring APIs where a batch item's output lives.
PARSING = "/api/v1/parsing"
CLASSIFIER = "/api/v1/classifier"
_SNIPPET = 200


# --- arguments --------------------------------------------------------------


def check_id(name: str, value: object) -> str:
    """A path parameter: a non-empty string that stays inside its path segment.

    Any other text is allowed and escaped (``/``, ``?``, ``#`` included): the id
    then reaches the server as given, whatever it holds.  Refused, each with a
    message that says what is wrong: no text at all, text that is only blank
    (whitespace or invisible characters, such as a stray U+2028), control
    characters, and the relative segments ``.`` / ``..``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must be a non-empty string")
    for index, char in enumerate(value):
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise ValueError(
                f"{name} must not contain control characters: found {_describe_char(char)} "
                f"at index {index}"
            )
    if all(c.isspace() or unicodedata.category(c) == "Cf" for c in value):
        shown = ", ".join(_describe_char(c) for c in dict.fromkeys(value))
        raise ValueError(
            f"{name} must not be blank: it holds only whitespace or invisible characters ({shown})"
        )
    if value in (".", ".."):
        raise ValueError(f"{name} must not be {value!r}: a relative path segment is not an id")
    _check_encodable(name, value)
    return value


def check_body_id(name: str, value: object) -> str:
    """An id sent in a JSON body: any non-empty text.  JSON carries ``..``, line
    breaks and blanks harmlessly (the path checks of ``check_id`` are for path
    parameters); only text that cannot be encoded at all is refused."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must be a non-empty string")
    _check_encodable(name, value)
    return value


def _describe_char(char: str) -> str:
    """``U+2028 LINE SEPARATOR``: a character named so that it can be seen."""
    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "")
    if not name and ord(char) < 0x20:
        name = f"^{chr(ord(char) + 0x40)}"
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


_CONTROL_NAMES = {
    "\x00": "NUL",
    "\t": "TAB",
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
}


def _check_encodable(name: str, value: str) -> None:
    # A lone surrogate cannot be UTF-8 encoded: yarl silently *drops* it from a
    # query value ("org\ud800x" would be sent as "orgx", another scope), and
    # quote() fails with a message that does not name the argument.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be valid Unicode text (no lone surrogates)") from None


def check_limit(value: int | None, *, name: str = "limit") -> int | None:
    if value is None:
        return None
    return check_int(name, value, minimum=1)


def check_offset(value: int | None, *, name: str = "offset") -> int | None:
    if value is None:
        return None
    return check_int(name, value, minimum=0)


def check_status(value: str | None, enum_type: type[E], *, name: str = "status") -> E | None:
    """A filter value must be one the API documents: a typo must not scan nothing.

    Case is not a typo (v1 statuses are lower case, v2 upper case): ``completed``
    is ``COMPLETED`` where the API spells it so.  Anything else is refused,
    with the closest documented value when there is one."""
    if value is None:
        return None
    allowed = [m.value for m in enum_type.__members__.values()]
    if value in allowed:
        return enum_type(value)
    folded = {a.casefold(): a for a in allowed}
    if isinstance(value, str) and value.casefold() in folded:
        return enum_type(folded[value.casefold()])
    raise ValueError(
        f"{name} must be one of {', '.join(allowed)}; got {value!r}{did_you_mean(value, allowed)}"
    )


def did_you_mean(value: object, allowed: Sequence[str]) -> str:
    """`` (did you mean COMPLETED?)`` for the closest of ``allowed``, or ``""``."""
    if not isinstance(value, str):
        return ""
    folded = {a.casefold(): a for a in allowed}
    close = difflib.get_close_matches(value.casefold(), list(folded), n=1, cutoff=0.6)
    return f" (did you mean {folded[close[0]]}?)" if close else ""


def check_only(ids: Iterable[str] | None, *, name: str = "only") -> frozenset[str] | None:
    """The ids a results stream is limited to: a collection of str, not a str
    (``only="itm-1"`` would mean its characters)."""
    if ids is None:
        return None
    if isinstance(ids, str | bytes):
        raise TypeError(f"{name} must be a collection of ids, not a single {type(ids).__name__}")
    wanted = frozenset(ids)
    for value in wanted:
        if not isinstance(value, str):
            raise TypeError(f"{name} must hold str ids, got {type(value).__name__}")
    return wanted


# --- requests ---------------------------------------------------------------


def path(template: str, **segments: str) -> str:
    """Fill a path template, escaping every segment completely (``/`` included)."""
    return api_path(API, template, **segments)


def api_path(root: str, template: str, **segments: str) -> str:
    """``path`` under another API root (``/api/v2/batches``, ``/api/v1/parsing``...)."""
    escaped = {k: quote(check_id(k, v), safe="") for k, v in segments.items()}
    return root + template.format(**escaped)


def query(**values: object) -> Params:
    """Query parameters with ``None`` dropped and values rendered as the API expects."""
    out: Params = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, str):
            if any(ord(c) < 0x20 for c in value):
                raise ValueError(f"{key} must not contain control characters")
            _check_encodable(key, value)
        out[key] = str(value)
    return out


# --- responses --------------------------------------------------------------


class Headers(Mapping[str, str]):
    """Response headers as a plain read-only ``Mapping``: names are case-insensitive.

    A name sent on several field lines keeps every line (``getall``, ``multi_items``)
    while a lookup gives the first one, as Go's ``Header.Get`` and the HTTP library
    under the transport do: the fields read above the transport (``Retry-After``,
    ``x-should-retry``, ``x-request-id``, ``Location``) are single-valued, and a
    duplicated one (a proxy adding its own) must not turn into an unparsable
    ``"5, 5"``.  Iteration yields each name once, spelled as first received.  The
    transport builds it from its HTTP library's headers: nothing above it sees
    that library's types.
    """

    __slots__ = ("_first", "_lines")
    _lines: tuple[tuple[str, str], ...]
    _first: dict[str, tuple[str, str]]

    def __init__(self, source: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs: Iterable[tuple[str, str]]
        if isinstance(source, Headers):
            pairs = source._lines
        elif isinstance(source, Mapping):
            pairs = source.items()  # a multi-valued mapping gives every line here
        else:
            pairs = source
        # str(): a str subclass (a case-insensitive name type) becomes a plain str
        self._lines = tuple((str(k), str(v)) for k, v in pairs)
        self._first = {}
        for line in self._lines:
            self._first.setdefault(line[0].lower(), line)

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._first[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return (line[0] for line in self._first.values())

    def __len__(self) -> int:
        return len(self._first)

    def getall(self, name: str) -> list[str]:
        """Every value sent for ``name``, in order (``[]`` when absent)."""
        key = name.lower()
        return [v for k, v in self._lines if k.lower() == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` field line, repeated names included, in order."""
        return list(self._lines)

    def __repr__(self) -> str:
        return f"Headers({list(self._lines)!r})"


REDACTED = b"<redacted>"


def _scrub(body: bytes, secret: bytes) -> bytes:
    """Servers sometimes echo the credential back ("invalid key llx-..."): mask it,
    also when JSON-escaped (error paths only: the JSON is re-encoded unescaped)."""
    if not secret:
        return body
    if b"\\u" in body:
        with contextlib.suppress(msgspec.DecodeError, RecursionError):
            body = msgspec.json.encode(msgspec.json.decode(body))
    return body.replace(secret, REDACTED) if secret in body else body


def scrub_text(value: str, secret: str) -> str:
    """``value`` with ``secret`` (the API key) masked."""
    return value.replace(secret, REDACTED.decode()) if secret and secret in value else value


def _scrub_detail(detail: Any, secret: str) -> Any:
    """``detail`` with the key masked in every string, however deeply nested."""
    if isinstance(detail, str):
        return scrub_text(detail, secret)
    if isinstance(detail, list):
        return [_scrub_detail(v, secret) for v in detail]
    if isinstance(detail, dict):
        return {_scrub_detail(k, secret): _scrub_detail(v, secret) for k, v in detail.items()}
    return detail


def snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", "replace")
    return text + ("…" if len(body) > _SNIPPET else "")


def decode_body(
    tp: type[T], body: bytes, *, status: int, method: str, url_path: str, secret: bytes = b""
) -> T:
    try:
        return models.decode(tp, body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        body = _scrub(body, secret)
        kind = "does not match" if isinstance(exc, msgspec.ValidationError) else "is not valid JSON"
        raise ResponseDecodeError(
            f"{method} {url_path}: {status} body {kind} {tp.__name__} ({exc}); "
            f"body starts: {snippet(body)!r}",
            status=status,
            method=method,
            path=url_path,
            snippet=snippet(body),
        ) from exc


class _ErrorBody(msgspec.Struct):
    detail: Any = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def _detail(body: bytes) -> Any:
    try:
        return _error_decoder.decode(body).detail
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def describe_detail(detail: Any) -> str | None:
    """One line for an error ``detail``: the string, or the 422 list's ``loc: msg``s."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for entry in detail[:5]:
            if isinstance(entry, dict):
                loc = ".".join(str(p) for p in entry.get("loc", []))
                parts.append(f"{loc}: {entry.get('msg', '')}".strip(": "))
        if parts:
            return "; ".join(parts)
    return None


def _describe(detail: Any, body: bytes) -> str:
    described = describe_detail(detail)
    if described is not None:
        # Server text of any size must not make the message that size (the
        # whole detail stays on the exception's ``detail``).
        return described if len(described) <= _SNIPPET else described[:_SNIPPET] + "…"
    return snippet(body) if body else "(empty body)"


def make_status_error(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    method: str,
    url_path: str,
    now: float,
    secret: bytes = b"",
) -> APIStatusError:
    body = _scrub(body, secret)
    detail = _detail(body)
    if not isinstance(headers, Headers):
        headers = Headers(headers)
    if secret:
        # The exception keeps the response headers and the decoded detail: a server
        # that echoes the key in a header (WWW-Authenticate, Location, an "x-echo")
        # or JSON-escapes it in the body ("llx\u002d...") must not smuggle it in.
        text = secret.decode("ascii", "replace")
        headers = Headers(
            (scrub_text(k, text), scrub_text(v, text)) for k, v in headers.multi_items()
        )
        try:
            detail = _scrub_detail(detail, text)
        except RecursionError:  # nested deeper than any real error detail
            detail = None
    request_id = headers.get("x-request-id") or headers.get("request-id")
    message = f"{method} {url_path} -> {status}: {_describe(detail, body)}"
    if 300 <= status < 400:
        location = headers.get("location", "?")
        message = (
            f"{method} {url_path} -> {status} redirect to {location!r} not followed "
            "(the API key is never sent to another location)"
        )
    common: dict[str, Any] = {
        "status_code": status,
        "detail": detail,
        "method": method,
        "path": url_path,
        "request_id": request_id,
        "headers": headers,
    }
    cls = status_error_class(status)
    if cls is RateLimitError:
        retry_after = parse_retry_after(headers, now=now)
        if retry_after is not None:
            message += f" (retry after {retry_after:g}s)"
        return RateLimitError(message, retry_after=retry_after, **common)
    return cls(message, **common)


def _refuse_error_body(body: bytes, *, status: int, method: str, path: str, secret: bytes) -> None:
    """A 2xx object with ``detail`` and no ``items`` is an error, not an empty page
    (a gateway or a failing backend answering 200): believed, it would end a scan."""
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return  # not JSON: decode_body says so
    if not isinstance(value, dict) or "detail" not in value or "items" in value:
        return
    shown = snippet(_scrub(body, secret))
    raise ResponseDecodeError(
        f"{method} {path}: {status} body carries an error detail and no items: not a "
        f"page; body starts: {shown!r}",
        status=status,
        method=method,
        path=path,
        snippet=shown,
    )


def decipher(
    model: type[T],
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    framed: bool,
    method: str,
    path: str,
    now: float,
    secret: bytes = b"",
) -> T:
    """One response, read: a 2xx body decoded into ``model``, or the exception the
    response stands for (raised), as gidgethub's ``sansio.decipher_response``.

    * 2xx: the body decoded as ``model``; a listing's body with an error
      ``detail`` and no ``items`` is no page (``ResponseDecodeError``); a body
      that does not decode raises
      ``ResponseDecodeError``, unless it was *unframed* (no Content-Length, not
      chunked: it ran to EOF, so a dropped connection looks like a clean end),
      when it raises ``APIConnectionError`` "connection closed mid-body".
    * anything else: the ``APIStatusError`` subclass for ``status``
      (``make_status_error``; ``now`` is the wall clock that an HTTP-date
      ``Retry-After`` is measured from).

    ``secret`` (the API key) is masked wherever the server echoes it.
    """
    if 200 <= status < 300:
        # A page that decoded with items had an "items" key: never an error body.
        # So the search for "detail" (a third of a 1,000-item page's decoding time)
        # runs only for a listing's body that came back without items.
        listing = "items" in getattr(model, "__struct_fields__", ())
        try:
            value = decode_body(
                model, body, status=status, method=method, url_path=path, secret=secret
            )
        except ResponseDecodeError as exc:
            if listing and b'"detail"' in body:
                _refuse_error_body(body, status=status, method=method, path=path, secret=secret)
            if framed:
                raise
            raise APIConnectionError(
                f"{method} {path}: connection closed mid-body "
                f"({len(body)} bytes, no length framing)",
                method=method,
                path=path,
            ) from exc
        if listing and not getattr(value, "items", None) and b'"detail"' in body:
            _refuse_error_body(body, status=status, method=method, path=path, secret=secret)
        return value
    raise make_status_error(
        status=status,
        headers=headers,
        body=body,
        method=method,
        url_path=path,
        now=now,
        secret=secret,
    )

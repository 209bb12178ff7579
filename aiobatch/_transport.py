"""The one place that touches aiohttp.

``Transport`` is the narrow seam (httpx's ``AsyncBaseTransport`` in spirit): send
one request, get ``(status, headers, body)`` back or a typed connection error.
The headers are a plain ``Mapping`` (``_protocol.Headers``), never aiohttp's
type: everything above (retries, ``_protocol.decipher``, pagination) is free of
aiohttp and testable with a fake.

``AiohttpTransport`` owns or borrows one ``aiohttp.ClientSession``; it never
follows redirects (so the key never travels to another host), verifies TLS, reads
bodies under a size cap (after decompression), and maps aiohttp's exceptions
onto the project's tree.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Mapping
from typing import NamedTuple, Protocol

import aiohttp
from aiohttp import ClientSession
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._config import ClientConfig
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    ContentEncodingError,
    ResponseTooLargeError,
    TLSVerificationError,
)
from ._protocol import Headers, Query
from .events import path_template

__all__ = ["ACCEPT_ENCODINGS", "AiohttpTransport", "ClientSession", "Response", "Transport"]

log = logging.getLogger("aiobatch.http")

#: The content codings this aiohttp can decode, sent as ``Accept-Encoding``: brotli
#: and zstd only when their optional decoders are installed.
ACCEPT_ENCODINGS: tuple[str, ...] = (
    "gzip",
    "deflate",
    *(("br",) if HAS_BROTLI else ()),
    *(("zstd",) if HAS_ZSTD else ()),
)
# aiohttp's words when it cannot decode a body: "Can not decode content-encoding:
# brotli (br). Please install `Brotli`" (refused with the head) or "...: gzip"
# (corrupt data).  A truncated deflate stream says just "deflate": a cut body.
_CANNOT_DECODE = re.compile(
    r"can ?not decode content-encoding:\s*(?:[\w.-]+\s*\(([\w.-]+)\)|([\w.-]+))", re.I
)


#: Query keys and values sent as they are (RFC 3986 unreserved characters): ids,
#: offsets, limits, statuses.  Anything else is left to yarl's encoder.
_PLAIN = re.compile(r"[A-Za-z0-9._~-]*\Z").match


class Response(NamedTuple):
    status: int
    #: Case-insensitive, read-only; every field line kept (``_protocol.Headers``).
    headers: Mapping[str, str]
    body: bytes
    #: False when the body ran to EOF with no length or chunk framing: a dropped
    #: connection then looks like a clean end, so a decode error means truncation.
    framed: bool = True


class Transport(Protocol):
    async def send(
        self, method: str, path: str, *, params: Query, body: bytes | None
    ) -> Response: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    def __init__(self, config: ClientConfig, *, session: ClientSession | None = None):
        self._config = config
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = session
        self._closed = False
        self._headers = {
            "Authorization": f"Bearer {config.api_key.reveal()}",
            "Accept": "application/json",
            "Accept-Encoding": ", ".join(ACCEPT_ENCODINGS),
            "User-Agent": config.user_agent,
        }
        # As the SDK: the custom headers are sent with every request to the API
        # (a User-Agent among them wins); never to another host.
        for name, value in config.headers:
            for own in [k for k in self._headers if k.lower() == name.lower()]:
                del self._headers[own]
            self._headers[name] = value
        t = config.timeout
        self._timeout = aiohttp.ClientTimeout(total=t.total, connect=t.connect, sock_read=t.read)
        # Our own session carries the headers and the timeout itself; a borrowed
        # one gets them on every request (its defaults are its owner's).
        self._per_request: dict[str, object] = (
            {"headers": self._headers, "timeout": self._timeout} if session is not None else {}
        )
        self._origin = str(URL(config.base_url))  # encoded once (IDN hosts, paths)
        # One slot per pooled connection (see ``send``); sized from the session's
        # connector on first use, None when the pool is unbounded.
        self._slots: asyncio.Semaphore | None = None
        self._slots_sized = False

    def __repr__(self) -> str:
        return f"<AiohttpTransport base_url={self._config.base_url!r}>"

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new BatchClient")
        if self._session is None:
            limits = self._config.limits
            connector = aiohttp.TCPConnector(
                limit=limits.max_connections,
                limit_per_host=limits.max_connections_per_host,
                keepalive_timeout=limits.keepalive_timeout,
                ssl=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=self._timeout,
                raise_for_status=False,
                auto_decompress=True,
                trust_env=False,
                # The API authenticates by header; cookies from a server are
                # neither needed nor trusted (and the jar costs CPU per request).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None and session is not self._borrowed:
            await session.close()

    async def send(self, method: str, path: str, *, params: Query, body: bytes | None) -> Response:
        session = self._open_session()
        if not self._slots_sized:
            self._slots = _pool_slots(session)
            self._slots_sized = True
        slots = self._slots
        if slots is None:
            return await self._send(session, method, path, params, body)
        # Queue for a pooled connection here, *outside* aiohttp's timeouts: aiohttp
        # counts the wait for a free connection against ``connect`` and ``total``,
        # so a scan wider than the pool (concurrency 16, 2 connections) turned its
        # own queueing into spurious timeouts and retries.  Here the clock starts
        # once a connection is free, and ``Timeout`` bounds the server alone.
        async with slots:
            return await self._send(session, method, path, params, body)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        params: Query,
        body: bytes | None,
    ) -> Response:
        kwargs = self._per_request
        if body is not None:
            headers = {**self._headers, "Content-Type": "application/json"}
            kwargs = {**kwargs, "headers": headers}
        url = self._url(path, params)
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                url if url is not None else self._config.base_url + path,
                params=None if url is not None else params,
                data=body,
                allow_redirects=False,
                raise_for_status=False,  # a borrowed session may default to True
                **kwargs,  # type: ignore[arg-type]
            ) as resp:
                _check_encoding(resp, method, path)
                try:
                    data = await self._read(resp, method, path)
                except aiohttp.ClientPayloadError as exc:
                    encoding = _undecodable(exc)
                    if encoding is None:
                        raise
                    raise _encoding_error(method, path, encoding, resp.status) from exc
                framed = resp.content_length is not None or resp.headers.get(
                    "Transfer-Encoding", ""
                ).lower().endswith("chunked")
                if log.isEnabledFor(logging.DEBUG):
                    ms = (time.perf_counter() - started) * 1000
                    log.debug(
                        "%s %s -> %d (%d bytes, %.1f ms)",
                        method,
                        path,
                        resp.status,
                        len(data),
                        ms,
                        extra={
                            "method": method,
                            "url_template": path_template(path),
                            "status": resp.status,
                            "bytes": len(data),
                            "duration_ms": round(ms, 3),
                        },
                    )
                return Response(resp.status, Headers(resp.headers), data, framed)
        except TimeoutError as exc:
            raise APITimeoutError(
                f"{method} {path}: timed out ({type(exc).__name__})",
                method=method,
                path=path,
                # a connect timeout provably sent nothing: even a POST may be replayed
                request_sent=not isinstance(exc, aiohttp.ConnectionTimeoutError),
            ) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise TLSVerificationError(
                f"{method} {path}: TLS certificate rejected: {exc.certificate_error}",
                method=method,
                path=path,
                request_sent=False,
            ) from exc
        except aiohttp.ClientConnectorSSLError as exc:
            # The handshake itself failed (e.g. https to a plain-HTTP port): it
            # fails the same way every time, so it is not retried either.
            raise TLSVerificationError(
                f"{method} {path}: TLS handshake failed: {exc.os_error}",
                method=method,
                path=path,
                request_sent=False,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise APIConnectionError(
                f"{method} {path}: cannot connect to {exc.host}:{exc.port} ({exc.os_error})",
                method=method,
                path=path,
                request_sent=False,
            ) from exc
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            if isinstance(exc, aiohttp.ClientResponseError):
                _scrub_request_info(exc)  # it carries our request headers: the key
            encoding = _undecodable(exc)
            if encoding is not None:  # "br" refused with the response head
                raise _encoding_error(method, path, encoding, 0) from exc
            raise APIConnectionError(
                f"{method} {path}: connection failed: {type(exc).__name__}: {exc}",
                method=method,
                path=path,
            ) from exc
        except RuntimeError as exc:
            if session.closed:  # a borrowed session closed by its owner
                raise ClientClosedError(
                    f"{method} {path}: the aiohttp session passed as session= is closed"
                ) from exc
            raise

    def _url(self, path: str, params: Query) -> URL | None:
        """The request URL, built without yarl's per-request parsing and query
        encoding when nothing in it needs escaping (every page request of a scan);
        None: let aiohttp build it."""
        if not path.isascii() or "?" in path or "#" in path:
            return None
        parts = []
        for key, value in params.items():
            for one in (value,) if isinstance(value, str) else value:
                if not (_PLAIN(key) and _PLAIN(one)):
                    return None
                parts.append(f"{key}={one}")
        query = "&".join(parts)
        return URL(f"{self._origin}{path}?{query}" if query else self._origin + path, encoded=True)

    async def _read(self, resp: aiohttp.ClientResponse, method: str, path: str) -> bytes:
        cap = self._config.limits.max_body_bytes
        length = resp.content_length
        encoded = "Content-Encoding" in resp.headers
        if length is not None and length > cap:
            resp.close()  # drop the connection rather than drain a huge body
            raise _too_large(method, path, cap, f"Content-Length {length}")
        if length is not None and not encoded:
            # The stream stops at Content-Length: one read is safe and fastest.
            return await resp.read()
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_any():
            total += len(chunk)
            if total > cap:
                resp.close()
                raise _too_large(method, path, cap, "body (after decompression)")
            chunks.append(chunk)
        return b"".join(chunks)


def _check_encoding(resp: aiohttp.ClientResponse, method: str, path: str) -> None:
    """Refuse a body in a coding aiohttp would hand over still encoded (it decodes
    one coding it knows, and passes anything else through as is)."""
    values = resp.headers.getall("Content-Encoding", ())
    codings = [
        c
        for c in (t.strip().lower() for v in values for t in v.split(","))
        if c and c != "identity"
    ]
    if not codings or (len(codings) == 1 and codings[0] in ACCEPT_ENCODINGS):
        return
    resp.close()  # the body is of no use: do not read it
    raise _encoding_error(method, path, ", ".join(codings), resp.status)


def _undecodable(exc: BaseException) -> str | None:
    """The coding named by aiohttp's "cannot decode" error in ``exc`` or its cause."""
    for e in (exc, exc.__cause__):
        if e is None:
            continue
        match = _CANNOT_DECODE.search(str(getattr(e, "message", None) or e))
        if match:
            return (match.group(1) or match.group(2)).lower()
    return None


def _encoding_error(method: str, path: str, encoding: str, status: int) -> ContentEncodingError:
    accepted = ", ".join(ACCEPT_ENCODINGS)
    head = f"{method} {path}: " + (f"{status} response " if status else "response ")
    if encoding in ACCEPT_ENCODINGS:
        why = f"body is not valid {encoding} data (Content-Encoding: {encoding})"
    else:
        why = (
            f"body has Content-Encoding {encoding!r}, which the client did not ask for "
            f"and cannot decode (Accept-Encoding: {accepted})"
        )
    return ContentEncodingError(
        head + why, encoding=encoding, status=status, method=method, path=path
    )


def _pool_slots(session: aiohttp.ClientSession) -> asyncio.Semaphore | None:
    """A semaphore as wide as the session's pool for one host (every request of
    a client goes to its one base URL), or None for an unbounded pool."""
    connector = session.connector
    caps = [
        n
        for n in (getattr(connector, "limit", 0), getattr(connector, "limit_per_host", 0))
        if isinstance(n, int) and n > 0
    ]
    return asyncio.Semaphore(min(caps)) if caps else None


def _scrub_request_info(exc: aiohttp.ClientResponseError) -> None:
    info = exc.request_info
    headers = CIMultiDict(info.headers)
    headers.popall("Authorization", None)
    exc.request_info = info._replace(headers=CIMultiDictProxy(headers))


def _too_large(method: str, path: str, cap: int, what: str) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"{method} {path}: {what} exceeds the {cap}-byte cap (Limits.max_body_bytes)",
        limit=cap,
        method=method,
        path=path,
    )

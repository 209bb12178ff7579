"""Presigned object-storage URLs: where a v2 parse result too large to come inline
is fetched from (``result_content_metadata[...].presigned_url``).

The URL is another host, so this is a transport of its own, apart from the
API's: no API key, no client header (custom ones included), no cookies, HTTPS
only (plain HTTP only when the client's own base URL is plain HTTP, as against
a local simulator), redirects followed by hand and never to another scheme,
and a size cap of its own (``Limits.max_download_bytes``).  The body streams
into a file the caller gives, never into memory whole.
"""

from __future__ import annotations

import ssl
from typing import IO
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ._config import ClientConfig
from ._errors import AiobatchError, APIConnectionError, APITimeoutError, ResponseTooLargeError

__all__ = ["PresignedURLError", "StorageTransport", "check_download_url"]

#: Redirects followed (same scheme only) before giving up.
MAX_REDIRECTS = 3
_CHUNK = 1 << 16


class PresignedURLError(AiobatchError):
    """A presigned URL was refused (``expired`` when the storage said 400/403:
    the URL has run out or was signed for something else, so read it again)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def expired(self) -> bool:
        return self.status in (400, 403)


def check_download_url(url: object, base_url: str) -> URL:
    """The URL, if the client may fetch it: http(s) with a host, no credentials,
    and HTTPS unless the client's own base URL is plain HTTP."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        raise PresignedURLError("presigned URL is empty or has whitespace")
    parts = urlsplit(url)
    allowed = ("https", "http") if urlsplit(base_url).scheme == "http" else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise PresignedURLError(
            f"presigned URL refused: scheme {parts.scheme!r} (allowed: {', '.join(allowed)})"
        )
    if parts.username or parts.password:
        raise PresignedURLError("presigned URL refused: it carries credentials")
    return URL(url, encoded=True)


def _host(url: URL) -> str:
    return f"{url.scheme}://{url.host}"  # never the query: it holds the signature


class StorageTransport:
    """One aiohttp session for presigned downloads, created on first use."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._session: aiohttp.ClientSession | None = None
        t = config.timeout
        self._timeout = aiohttp.ClientTimeout(total=None, connect=t.connect, sock_read=t.read)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                # aiohttp's own User-Agent, nothing of the client's
                connector=aiohttp.TCPConnector(limit=16, ssl=True),
            )
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def fetch(self, url: str, sink: IO[bytes]) -> int:
        """Stream ``url`` into ``sink`` (from its start); the bytes written."""
        cap = self._config.limits.max_download_bytes
        target = check_download_url(url, self._config.base_url)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with self._open().get(
                    target, allow_redirects=False, raise_for_status=False
                ) as resp:
                    if resp.status in (301, 302, 303, 307, 308):
                        nxt = _redirect(target, resp.headers.get("Location", ""))
                        # A hop is checked as the first URL was: no credentials in it.
                        target = check_download_url(str(nxt), self._config.base_url)
                        continue
                    if resp.status == 429 or resp.status >= 500:  # retried, as the API's
                        raise APIConnectionError(
                            f"GET {_host(target)}/...: {resp.status} from object storage"
                        )
                    if resp.status != 200:
                        raise PresignedURLError(
                            f"GET {_host(target)}/...: {resp.status} from object storage",
                            status=resp.status,
                        )
                    return await _stream(resp, sink, cap, target)
            except TimeoutError as exc:
                raise APITimeoutError(f"GET {_host(target)}/...: timed out") from exc
            except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
                raise APIConnectionError(
                    f"GET {_host(target)}/...: {type(exc).__name__}: {exc}"
                ) from exc
        raise PresignedURLError(f"presigned URL: more than {MAX_REDIRECTS} redirects")


def _redirect(current: URL, location: str) -> URL:
    nxt = current.join(URL(location)) if location else current
    if nxt.scheme != current.scheme:
        raise PresignedURLError(
            f"presigned URL redirected from {current.scheme} to {nxt.scheme or '?'}: refused"
        )
    return nxt


async def _stream(resp: aiohttp.ClientResponse, sink: IO[bytes], cap: int, url: URL) -> int:
    length = resp.content_length
    if length is not None and length > cap:
        resp.close()
        raise _too_large(url, cap, f"Content-Length {length}")
    sink.seek(0)
    sink.truncate()
    total = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > cap:
            resp.close()
            raise _too_large(url, cap, "body")
        sink.write(chunk)
    if length is not None and total != length:
        raise APIConnectionError(f"GET {_host(url)}/...: body cut at {total} of {length} bytes")
    sink.flush()
    return total


def _too_large(url: URL, cap: int, what: str) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"GET {_host(url)}/...: {what} exceeds the {cap}-byte cap (Limits.max_download_bytes)",
        limit=cap,
        method="GET",
        path=_host(url),
    )

"""Object storage for the simulator's presigned result URLs: a second listener,
another origin than the API, that behaves as S3 does for a presigned GET.

``GET /{bucket}/{job_id}/{name}?X-Amz-Date=...&X-Amz-Expires=...&X-Amz-Signature=...``
answers the object when the signature matches and the URL has not expired on the
simulator's clock (403 ``AccessDenied`` otherwise); a request that also carries an
``Authorization`` header is refused with 400, as S3 refuses two auth mechanisms, so a
client that leaks its API key to storage fails loudly.  Every request is recorded
(``sim.storage_requests``), headers included, for tests to inspect.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from ._jobs import SimClock

__all__ = ["BUCKET", "ObjectStore", "StorageRequest"]

BUCKET = "aiobatch-sim-results"
_DATE = "%Y%m%dT%H%M%SZ"

#: ``(job_id, name) -> (body, content type)``, None when no such object exists.
Resolver = Callable[[str, str], "tuple[bytes, str] | None"]


@dataclass(frozen=True, slots=True)
class StorageRequest:
    """One request the storage listener received."""

    method: str
    path: str
    headers: CIMultiDict[str]
    status: int


def _xml_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


class ObjectStore:
    """The storage listener; ``presign`` makes URLs that it serves."""

    def __init__(
        self,
        clock: SimClock,
        resolve: Resolver,
        *,
        host: str,
        ttl: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError("presigned_ttl must be > 0")
        self.clock = clock
        self.ttl = ttl
        self.requests: list[StorageRequest] = []
        self._resolve = resolve
        self._host = host
        self._ssl = ssl_context
        self._secret = hashlib.blake2b(f"{id(self)}/{time.time_ns()}".encode()).digest()
        self._runner: web.AppRunner | None = None
        self._port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/" + BUCKET + "/{job_id}/{name}", self._get)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, 0, ssl_context=self._ssl, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the simulator is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{host}:{self._port}"

    def _signature(self, path: str, date: str, expires: str) -> str:
        msg = f"{path}\n{date}\n{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def presign(self, job_id: str, name: str) -> str:
        """A URL for object ``name`` of ``job_id``, valid ``ttl`` seconds from now."""
        path = f"/{BUCKET}/{job_id}/{name}"
        date = time.strftime(_DATE, time.gmtime(self.clock.now()))
        expires = str(round(self.ttl))
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(path, date, expires),
        }
        return str(URL(self.base_url + path).with_query(query))

    def _check(self, request: web.Request) -> web.Response | None:
        if "Authorization" in request.headers:
            msg = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter"
            return _xml_error(400, "InvalidArgument", msg)
        q = request.query
        date, expires = q.get("X-Amz-Date", ""), q.get("X-Amz-Expires", "")
        given = q.get("X-Amz-Signature", "")
        if not hmac.compare_digest(given, self._signature(request.path, date, expires)):
            return _xml_error(403, "SignatureDoesNotMatch", "The request signature is wrong")
        signed_at = calendar.timegm(time.strptime(date, _DATE))
        if self.clock.now() > signed_at + int(expires):
            return _xml_error(403, "AccessDenied", "Request has expired")
        return None

    async def _get(self, request: web.Request) -> web.StreamResponse:
        resp = self._check(request)
        if resp is None:
            found = self._resolve(request.match_info["job_id"], request.match_info["name"])
            if found is None:
                resp = _xml_error(404, "NoSuchKey", "The specified key does not exist.")
            else:
                body, content_type = found
                charset = "utf-8" if content_type.startswith("text/") else None
                resp = web.Response(body=body, content_type=content_type, charset=charset)
        self.requests.append(
            StorageRequest(request.method, request.path, CIMultiDict(request.headers), resp.status)
        )
        return resp

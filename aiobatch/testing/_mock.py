"""``MockTransport``: answer a client's requests with a function, in the style of
httpx's ``MockTransport``.

For a user's unit tests that need no server: ``BatchClient(transport=...)`` is
the seam, so everything above it (retries, error mapping, pagination, scans)
runs for real; only the socket is replaced.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple, TypeAlias

from multidict import CIMultiDict, CIMultiDictProxy

from .._errors import ClientClosedError
from .._protocol import Query
from .._transport import Response

__all__ = ["MockRequest", "MockTransport"]


class MockRequest(NamedTuple):
    """What the client sent: ``path`` is below the base URL (``/{job_id}/items``)."""

    method: str
    path: str
    params: Query
    body: bytes | None


Handler: TypeAlias = Callable[[MockRequest], "Response | Awaitable[Response]"]


class MockTransport:
    """A ``Transport`` whose answers come from ``handler(request)`` (plain or async).

    ``BatchClient(api_key=..., transport=MockTransport(handler))``.  Headers the
    handler returns may be a plain dict: they are made case-insensitive, as the
    real transport's are.  An exception the handler raises reaches the caller as
    it is (raise ``APIConnectionError`` to simulate a dropped connection).
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        self._handler = handler
        self._closed = False

    def __repr__(self) -> str:
        return f"<MockTransport handler={getattr(self._handler, '__name__', '?')}>"

    async def send(self, method: str, path: str, *, params: Query, body: bytes | None) -> Response:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new BatchClient")
        answer = self._handler(MockRequest(method, path, params, body))
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, Response):
            raise TypeError(
                f"MockTransport handler must return aiobatch.Response, got {type(answer).__name__}"
            )
        return answer._replace(headers=_headers(answer.headers))

    async def aclose(self) -> None:
        self._closed = True


def _headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    if isinstance(headers, CIMultiDictProxy):
        return headers
    return CIMultiDictProxy(CIMultiDict(headers))

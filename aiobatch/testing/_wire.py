"""Responses that break HTTP on purpose.

aiohttp's response machinery always frames bodies correctly, so these faults
write raw bytes to the transport and then close or reset it.  The handler then
returns ``_Gone``, whose ``prepare`` raises ``ConnectionResetError``: aiohttp
treats that as a client that went away (no error log, no second response).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

__all__ = ["deliver_broken", "gone", "stall", "trickle"]


class _Gone(web.StreamResponse):
    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        raise ConnectionResetError("the simulator dropped this connection on purpose")


def gone(status: int = 200) -> web.StreamResponse:
    """A response aiohttp will not send (``status`` is what the log records)."""
    return _Gone(status=status)


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reset(request: web.BaseRequest) -> None:
    """Abort with RST (SO_LINGER 0) rather than FIN, as a crashed peer would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def deliver_broken(
    request: web.BaseRequest, kind: str, resp: web.Response, cut_fraction: float
) -> web.StreamResponse:
    """Send ``resp`` broken in the way ``kind`` names; see ``Faults``."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return gone()
    if kind == "reset":
        reset(request)
        return gone()
    body = bytes(resp.body) if isinstance(resp.body, bytes | bytearray) else b""
    cut = max(1, int(len(body) * cut_fraction)) if body else 0
    headers = {"Content-Type": resp.headers.get("Content-Type", "application/json")}
    if kind == "chunked_cut":
        headers["Transfer-Encoding"] = "chunked"
        half = max(1, cut // 2)
        chunks = [body[:half], body[half:cut]]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    elif kind == "unframed_cut":
        headers["Connection"] = "close"
        payload = body[:cut]
    else:  # truncate, reset_mid_body: the length promises the whole body
        headers["Content-Length"] = str(len(body))
        payload = body[:cut]
    transport.write(_head(resp.status, headers) + payload)
    if kind == "reset_mid_body":
        # Let the partial body leave before the RST overtakes it.
        await asyncio.sleep(0.002)
        reset(request)
    else:
        transport.close()  # a clean FIN: only the framing tells the client it lost data
    return gone(resp.status)


async def trickle(
    request: web.BaseRequest,
    resp: web.Response,
    bytes_per_sec: float,
    sleep: Callable[[float], Awaitable[None]],
) -> web.StreamResponse:
    """Send a correct response slowly, in chunks of about 1/20 s each."""
    body = bytes(resp.body) if isinstance(resp.body, bytes | bytearray) else b""
    out = web.StreamResponse(status=resp.status, headers=resp.headers)
    out.content_length = len(body)
    chunk = max(1, int(bytes_per_sec / 20))
    try:
        await out.prepare(request)
        for start in range(0, len(body), chunk):
            piece = body[start : start + chunk]
            await out.write(piece)
            await sleep(len(piece) / bytes_per_sec)
    except ConnectionError:
        return gone(resp.status)  # the client gave up waiting; nothing left to send
    return out


async def stall(request: web.BaseRequest) -> web.StreamResponse:
    """Answer nothing until the client closes the connection (or the server stops).

    Polled on the loop's own clock: aiohttp does not wake a handler whose client
    left, and the simulator's ``sleep`` may be a fake that never waits."""
    transport = request.transport
    # No event says the client left: poll.
    while transport is not None and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    return gone()

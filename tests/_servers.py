"""Test helpers: a recording sleep, and small loopback servers (real sockets).

``serve(app)`` runs an ``aiohttp.web`` application on 127.0.0.1 (port 0);
``RawServer`` is a bare ``asyncio.start_server`` for framing faults that
aiohttp's own server would never produce (a lying Content-Length, a connection
dropped before the answer, no answer at all).  Both record what they received.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ssl import SSLContext

from aiohttp import web
from aiohttp.test_utils import TestServer


class RecordingSleep:
    """A ``sleep`` for RetryPolicy: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@contextlib.asynccontextmanager
async def serve(app: web.Application, *, ssl: SSLContext | None = None) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 (random port); yield its base URL (no trailing slash)."""
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server(ssl=ssl)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- raw server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Write ``data`` (a complete, framed response); keep the connection if ``keep``."""

    data: bytes
    keep: bool = True


@dataclass(frozen=True)
class Drop:
    """Write ``data`` (maybe nothing, maybe a partial response), then close."""

    data: bytes = b""


@dataclass(frozen=True)
class Hang:
    """Read the request, then never answer (until the client goes away)."""


Action = Reply | Drop | Hang


def http_response(
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    content_length: int | None = None,
) -> bytes:
    """Build raw HTTP/1.1 response bytes; ``content_length`` may lie on purpose."""
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    if "Transfer-Encoding" not in hdrs and content_length != -1:
        hdrs.setdefault(
            "Content-Length", str(len(body) if content_length is None else content_length)
        )
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    return head.encode("latin-1") + b"\r\n" + body


@dataclass
class RawRequest:
    request_line: str
    headers: dict[str, str]
    body: bytes

    @property
    def method(self) -> str:
        return self.request_line.split(" ")[0]

    @property
    def target(self) -> str:
        """The request target exactly as it crossed the wire."""
        return self.request_line.split(" ")[1]


@dataclass
class RawServer:
    """Answers request N with ``script[N]`` (the last action repeats)."""

    script: list[Action]
    requests: list[RawRequest] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _next_action(self) -> Action:
        index = min(len(self.requests) - 1, len(self.script) - 1)
        return self.script[index]

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                action = self._next_action()
                if isinstance(action, Hang):
                    await reader.read()  # returns b"" once the client closes
                    return
                writer.write(action.data)
                await writer.drain()
                if isinstance(action, Drop) or not action.keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RawRequest(lines[0], headers, body)

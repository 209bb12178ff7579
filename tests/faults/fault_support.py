"""Shared tools of the fault suite: a virtual clock for retries, the simulator
with a server-side request recorder, request gates, and the secret checker.

Nothing here sleeps for real backoff: ``VirtualClock`` is the ``sleep`` /
``monotonic`` / ``wall_clock`` of the client's ``RetryPolicy``; a retry "waits"
by moving virtual time forward, and the server records the virtual time at
which each request arrived, so "not retried before 2 s" is checked exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import _servers
from aiohttp import web
from aiohttp.typedefs import Middleware

from aiobatch import BatchClient, BatchItem, RetryPolicy
from aiobatch.testing import Faults, SimClock, SimJob, Simulator

#: A distinctive key: any appearance of it outside the Authorization header is a leak.
KEY = "llx-FAULTS-s3cr3t-9b7e1c2d4f6a8"
API = "/api/v1/beta/batch-processing"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- time ------------------------------------------------------------------------


class VirtualClock:
    """``sleep`` moves time forward instead of waiting (and yields once)."""

    def __init__(self, wall_start: float = 1_760_000_000.0) -> None:
        self.now = 0.0
        self.wall_start = wall_start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.wall_start + self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += max(0.0, delay)
        await asyncio.sleep(0)

    def policy(self, **kw: Any) -> RetryPolicy:
        kw.setdefault("random", lambda: 0.0)
        return RetryPolicy(sleep=self.sleep, monotonic=self.monotonic, wall_clock=self.wall, **kw)


async def wait_until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Poll (real time, bounded) until ``predicate()``; fail the test after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.005)


class RawServer(_servers.RawServer):
    """``tests/_servers.RawServer`` that lets its connection tasks end by themselves
    before cancelling them: on Python 3.11 a cancelled ``start_server`` callback
    task makes asyncio report "Exception in callback ..." to the loop's exception
    handler, which the suite's guard (rightly) treats as a failure."""

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        await super().__aexit__(*exc)


# --- what the server saw -----------------------------------------------------------


@dataclass(slots=True)
class Seen:
    """One request as the server saw it."""

    path: str
    query: dict[str, str]
    vtime: float  #: the client's virtual time when the request arrived
    peer: int  #: the client's source port (one per connection)
    authorization: str
    status: int | None = None

    @property
    def offset(self) -> int | None:
        raw = self.query.get("offset")
        return int(raw) if raw is not None and raw.isdigit() else None


@dataclass
class Recorder:
    """An outermost middleware that logs every request, even faulted ones."""

    clock: VirtualClock | None = None
    seen: list[Seen] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = Seen(
            request.path,
            dict(request.query),
            self.clock.now if self.clock is not None else 0.0,
            peer[1] if peer else -1,
            request.headers.get("Authorization", ""),
        )
        self.seen.append(record)
        resp = await handler(request)
        record.status = resp.status
        return resp

    def items(self) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith("/items")]

    def at(self, offset: int) -> list[Seen]:
        return [s for s in self.items() if s.offset == offset]


class Hold:
    """Middleware that parks chosen item requests until the client hangs up.

    ``held`` counts parked requests; ``dropped`` those whose connection the
    client closed while parked (a cancelled request).  ``release()`` lets every
    parked request go on (used at teardown); a parked request gives up by
    itself after ``limit`` seconds so a broken test cannot hang the suite.
    """

    def __init__(self, should_hold: Callable[[int | None], bool], limit: float = 5.0) -> None:
        self._should_hold = should_hold
        self._limit = limit
        self._released = asyncio.Event()
        self.held = 0
        self.dropped = 0

    def release(self) -> None:
        self._released.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = request.query.get("offset", "")
        offset = int(raw) if raw.isdigit() else None
        if not request.path.endswith("/items") or not self._should_hold(offset):
            return await handler(request)
        self.held += 1
        deadline = time.monotonic() + self._limit
        try:
            while not self._released.is_set() and time.monotonic() < deadline:
                if request.transport is None or request.transport.is_closing():
                    self.dropped += 1
                    raise ConnectionResetError("client went away")  # nothing left to answer
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            self.dropped += 1
            raise
        return await handler(request)


@contextlib.asynccontextmanager
async def simulator(
    jobs: Iterable[SimJob],
    *,
    faults: Faults | None = None,
    middlewares: Sequence[Middleware] = (),
    **kw: Any,
) -> AsyncIterator[Simulator]:
    """A started simulator with a frozen clock, key ``KEY`` and ``middlewares``
    placed outermost (they see every request, faulted or not)."""
    kw.setdefault("clock", SimClock.frozen_at())
    sim = Simulator(jobs, faults=faults, api_key=KEY, **kw)
    for i, mw in enumerate(middlewares):
        sim.app.middlewares.insert(i, mw)
    async with sim:
        yield sim


def client(base_url: str, clock: VirtualClock, *, max_retries: int = 5, **kw: Any) -> BatchClient:
    policy = kw.pop("retry", None) or clock.policy(max_retries=max_retries)
    return BatchClient(KEY, base_url=base_url, retry=policy, **kw)


def ids(items: Iterable[BatchItem]) -> list[str]:
    return [item.item_id for item in items]


def assert_exact(got: Sequence[str], expected: Sequence[str]) -> None:
    """The exact ids, in order, none twice."""
    assert len(got) == len(set(got)), "an item was yielded twice"
    assert list(got) == list(expected)


# --- secrets -----------------------------------------------------------------------


def find_secret(obj: object, secret: str = KEY) -> list[str]:
    """Paths inside ``obj`` (an exception, a model, a container...) where ``secret``
    appears: walks ``vars()``, slots, ``args``, mappings, sequences, and an
    exception's ``__cause__`` / ``__context__`` / ``__notes__``."""
    found: list[str] = []
    seen: set[int] = set()
    raw = secret.encode()

    def walk(value: object, where: str, depth: int) -> None:
        if depth > 12 or id(value) in seen:
            return
        if isinstance(value, str):
            if secret in value:
                found.append(where)
            return
        if isinstance(value, bytes | bytearray | memoryview):
            if raw in bytes(value):
                found.append(where)
            return
        if value is None or isinstance(value, int | float | bool | type):
            return
        seen.add(id(value))
        if isinstance(value, BaseException):
            walk(str(value), f"{where}.__str__", depth + 1)
            walk(value.args, f"{where}.args", depth + 1)
            walk(value.__cause__, f"{where}.__cause__", depth + 1)
            walk(value.__context__, f"{where}.__context__", depth + 1)
            walk(getattr(value, "__notes__", None), f"{where}.__notes__", depth + 1)
        if isinstance(value, Mapping):
            for k, v in list(value.items()):
                walk(k, f"{where}[key]", depth + 1)
                walk(v, f"{where}[{k!r}]", depth + 1)
            return
        if isinstance(value, list | tuple | set | frozenset):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]", depth + 1)
            return
        walk(repr(value), f"{where}.__repr__", depth + 1)
        attrs: dict[str, object] = {}
        with contextlib.suppress(TypeError):
            attrs.update(vars(value))
        for cls in type(value).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if isinstance(name, str) and hasattr(value, name):
                    attrs[name] = getattr(value, name)
        for name, v in attrs.items():
            walk(v, f"{where}.{name}", depth + 1)

    walk(obj, "obj", 0)
    return found


def assert_no_secret(*objs: object) -> None:
    for obj in objs:
        leaks = find_secret(obj)
        assert leaks == [], f"API key found at {leaks}"

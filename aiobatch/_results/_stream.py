"""The results stream: the item scan feeds a bounded window of result fetches;
results come out in item order through a bounded memory object stream.

Shape (all inside one producer task, spawned like a plain scan in the client's
supervisor, so the consumer never holds a task group or a cancel scope):

* the dispatcher reads the item scan and puts one cell per item into the
  ``order`` stream (buffer: ``2 * concurrency``), then starts that item's fetch; a
  full window blocks it, so a slow consumer stops the scan and the fetches;
* each fetch runs the job type's resolver through ``Get``: the client's retry
  policy, paced by an ``AdaptiveLimiter`` of its own (a 429 on results halves the
  result window and pauses result requests, as a 429 on pages does for the scan);
* the emitter waits for the head cell and sends its ``ItemResult`` on.

At most ``2 * concurrency + 3`` results are held at once (the window, the cell
being emitted, one in the output buffer, one with the consumer), and at most
``concurrency`` result requests are in flight (the limiter's slots).  A per-item
failure becomes ``ItemResult.error``; a systemic one (401, 403, the listing
failing for good, a bug) ends the stream with that exception, after every
result before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol, Self, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import (
    AiobatchError,
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
    ResponseDecodeError,
    ResponseTooLargeError,
)
from .._paging import ItemIterator, ScanProgress
from .._paging.iterators import StreamIterator
from .._paging.throttle import AdaptiveLimiter
from .._paging.walk import Failure, Finished
from .._protocol import Query
from .._retry import call_with_retries
from ..events import ResultEvent, emit
from ..models import BatchFileResult, BatchItem
from ..resources._requester import Api
from ._resolvers import Get, Resolver
from ._types import (
    FileResult,
    ItemError,
    ItemFailure,
    ItemResult,
    ResultContent,
    ResultsProgress,
)
from ._v2 import FileResolver

__all__ = [
    "FileResultIterator",
    "FileSetup",
    "ResultIterator",
    "ResultStream",
    "Setup",
    "start_file_results",
    "start_results",
]

M = TypeVar("M")


class _Result(Protocol):
    @property
    def error(self) -> ItemError | None: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def next_offset(self) -> int: ...


R = TypeVar("R", bound=_Result)
_Msg = Any  # a result, a Failure or Finished


class _Source(Protocol):
    """What the dispatcher reads: items in order, with their resume position."""

    @property
    def progress(self) -> ScanProgress: ...
    def __aiter__(self) -> AsyncIterator[Any]: ...
    async def aclose(self) -> None: ...


#: ``(get, item) -> content`` (or an ``ItemFailure``).
_Fetch = Callable[[Get, Any], Awaitable[ResultContent]]
#: ``item -> whether its result is wanted`` (``only=``: the others are passed by).
_Keep = Callable[[Any], bool]
#: ``(item, content, error, next position) -> result``.
_Make = Callable[[Any, ResultContent | None, ItemError | None, int], Any]


@dataclass(frozen=True, slots=True)
class Setup:
    """What the stream resolves when it starts (it may ask the API first)."""

    resolver: Resolver
    kind: str
    items: ItemIterator[BatchItem]


@dataclass(frozen=True, slots=True)
class FileSetup:
    """A v2 batch's results stream: its files (in the batch's result order) and
    the resolver of its job type."""

    resolver: FileResolver
    kind: str
    files: list[BatchFileResult]
    #: With a checkpoint: where it starts (read when the stream starts), and
    #: the checkpoint's hold on the stream.
    start: int | None = None
    tap: _FileTap | None = None


class _FileTap(Protocol):
    async def room(self) -> None: ...
    def hand(self, item: BatchFileResult, pos: int) -> bool: ...
    def end(self, done: bool) -> None: ...


class _FileSource:
    """A batch's file results as a source: position ``i + 1`` after file ``i``."""

    def __init__(
        self, files: list[BatchFileResult], start: int, tap: _FileTap | None = None
    ) -> None:
        self._files = files
        self._next = start
        self._tap = tap
        self.progress = ScanProgress(next_offset=start, total=len(files))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[int, BatchFileResult]:
        tap = self._tap
        if tap is not None:
            await tap.room()
        while True:
            i = self._next
            if i >= len(self._files):
                if tap is not None:
                    tap.end(True)
                raise StopAsyncIteration
            self._next = i + 1
            self.progress.next_offset = i + 1
            if tap is None or tap.hand(self._files[i], i):
                return i, self._files[i]

    async def aclose(self) -> None:
        self._next = len(self._files)


class _Cell:
    __slots__ = ("done", "fatal", "item", "position", "result")

    def __init__(self, item: Any, position: int) -> None:
        self.item = item
        self.position = position
        self.done = asyncio.Event()
        self.result: Any = None
        self.fatal: Exception | None = None


def _systemic(exc: BaseException) -> bool:
    """Failures that no other item can escape: stop the whole stream."""
    return isinstance(exc, AuthenticationError | PermissionDeniedError) or not isinstance(
        exc, AiobatchError
    )


def _item_error(exc: AiobatchError) -> ItemError:
    status = exc.status_code if isinstance(exc, APIStatusError) else None
    if isinstance(exc, ResponseTooLargeError):
        return ItemError("too_large", str(exc), None, exc)
    if isinstance(exc, ResponseDecodeError):
        return ItemError("invalid", str(exc), exc.status, exc)
    if status == 404:
        return ItemError("missing", str(exc), status, exc)
    return ItemError("unavailable", str(exc), status, exc)


def _producer(
    api: Api,
    prepare: Callable[[], Awaitable[tuple[_Source, _Fetch]]],
    make: _Make,
    concurrency: int,
    progress: ResultsProgress,
    keep: _Keep | None = None,
) -> Callable[[MemoryObjectSendStream[_Msg]], Awaitable[None]]:
    """The producer task of a result stream: ``prepare`` resolves the source and
    its fetch when the stream starts; any failure goes down the stream."""

    async def run(out: MemoryObjectSendStream[_Msg]) -> None:
        async with out:
            failure: Exception | None = None
            try:
                source, fetch = await prepare()
                await _pump(api, source, fetch, make, concurrency, progress, out, keep)
            except Exception as exc:
                failure = exc
            if failure is not None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await out.send(Failure(failure))

    return run


def start_results(
    api: Api,
    setup: Callable[[], Awaitable[Setup]],
    scope: Mapping[str, str],
    concurrency: int,
    progress: ResultsProgress,
    only: frozenset[str] | None = None,
    *,
    path: str,
) -> ResultIterator:
    async def prepare() -> tuple[_Source, _Fetch]:
        ready = await setup()
        progress.kind = ready.kind
        progress.listing = ready.items.progress
        resolver, kind = ready.resolver, ready.kind

        def fetch(get: Get, item: Any) -> Awaitable[ResultContent]:
            return resolver.fetch(get, item, kind, scope)

        return ready.items, fetch

    keep = None if only is None else lambda item: item.item_id in only
    run = _producer(api, prepare, ItemResult, concurrency, progress, keep)
    stream = ResultIterator(run, api.spawn, progress).count(api.counters)
    return stream.observe(api.hooks, "results", path)


def _file_result(
    item: tuple[int, BatchFileResult],
    content: ResultContent | None,
    error: ItemError | None,
    position: int,
) -> FileResult:
    return FileResult(item[1], content, error, item[0])


def start_file_results(
    api: Api,
    setup: Callable[[], Awaitable[FileSetup]],
    scope: Mapping[str, str],
    concurrency: int,
    progress: ResultsProgress,
    start: int = 0,
    only: frozenset[str] | None = None,
    *,
    path: str,
) -> FileResultIterator:
    """The bounded in-order fetcher over a v2 batch's files (``FileResult``s)."""

    async def prepare() -> tuple[_Source, _Fetch]:
        ready = await setup()
        progress.kind = ready.kind
        source = _FileSource(ready.files, start if ready.start is None else ready.start, ready.tap)
        progress.listing = source.progress
        resolver, kind = ready.resolver, ready.kind

        def fetch(get: Get, item: Any) -> Awaitable[ResultContent]:
            return resolver.fetch(get, item[1], kind, scope)

        return source, fetch

    keep = None if only is None else lambda item: item[1].source_directory_file_id in only
    run = _producer(api, prepare, _file_result, concurrency, progress, keep)
    stream = FileResultIterator(run, api.spawn, progress).count(api.counters)
    return stream.observe(api.hooks, "results", path)


async def _pump(
    api: Api,
    items: _Source,
    fetch: _Fetch,
    make: _Make,
    concurrency: int,
    progress: ResultsProgress,
    out: MemoryObjectSendStream[_Msg],
    keep: _Keep | None = None,
) -> None:
    limiter = AdaptiveLimiter(concurrency, api.policy, progress.fetches)
    get = _Getter(api, limiter)

    async def fetch_one(cell: _Cell) -> None:
        item = cell.item
        assert item is not None
        try:
            try:
                content = await fetch(get, item)
            except ItemFailure as f:
                error = ItemError(f.kind, str(f), f.status_code, f.__cause__)
                cell.result = make(item, None, error, cell.position)
            except AiobatchError as exc:
                if _systemic(exc):
                    raise
                cell.result = make(item, None, _item_error(exc), cell.position)
            else:
                cell.result = make(item, content, None, cell.position)
        except Exception as exc:  # to the emitter, never into the task group
            cell.fatal = exc
        finally:
            cell.done.set()

    # Twice the concurrency: a slow head (a failed item asks twice) does not idle
    # every slot while the results behind it wait their turn.  A plain asyncio
    # queue inside the stream (as in the scan engine): anyio's streams and events
    # add a checkpoint per call, a measurable cost per result here.
    order: asyncio.Queue[_Cell] = asyncio.Queue(2 * concurrency)
    # A fixed pool of fetchers (cheaper than a task per item); the limiter's
    # slots bound the requests in flight below it after a 429.
    todo: asyncio.Queue[_Cell] = asyncio.Queue()

    async def fetcher() -> None:
        while True:
            await fetch_one(await todo.get())

    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(fetcher)
        tg.start_soon(_dispatch, items, order, todo, keep)
        try:
            await _emit(order, out)
        except Exception as exc:  # raised after the group: never an ExceptionGroup
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


class _Getter:
    """``Get`` for resolvers: API GETs retried and paced by the stream's limiter,
    and presigned downloads (another host: retried, paced by the slots only)."""

    __slots__ = ("_api", "_limiter")

    def __init__(self, api: Api, limiter: AdaptiveLimiter) -> None:
        self._api = api
        self._limiter = limiter

    async def __call__(self, model: type[M], path: str, params: Query) -> M:
        limiter = self._limiter
        await limiter.slots.acquire()
        try:
            return await call_with_retries(
                self._api.policy,
                functools.partial(self._api.send, model, path, params),
                idempotent=True,
                what=f"GET {path}",
                hooks=limiter,
            )
        finally:
            limiter.slots.release()

    async def download(self, url: str, sink: IO[bytes]) -> int:
        slots = self._limiter.slots
        await slots.acquire()
        try:
            return await call_with_retries(
                self._api.policy,
                functools.partial(self._api.download, url, sink),
                idempotent=True,
                what="GET presigned URL",
            )
        finally:
            slots.release()


async def _dispatch(
    items: _Source,
    order: asyncio.Queue[_Cell],
    todo: asyncio.Queue[_Cell],
    keep: _Keep | None = None,
) -> None:
    try:
        async for item in items:
            if keep is not None and not keep(item):
                continue
            cell = _Cell(item, items.progress.next_offset)
            await order.put(cell)  # waits while the window is full
            todo.put_nowait(cell)
        end = _Cell(None, items.progress.next_offset)
    except Exception as exc:  # the listing failed: after every item before it
        end = _Cell(None, items.progress.next_offset)
        end.fatal = exc
    finally:
        with anyio.CancelScope(shield=True):
            await items.aclose()
    end.done.set()
    await order.put(end)


async def _emit(order: asyncio.Queue[_Cell], out: MemoryObjectSendStream[_Msg]) -> None:
    while True:
        cell = await order.get()
        if not cell.done.is_set():
            await cell.done.wait()
        if cell.fatal is not None:
            raise cell.fatal
        if cell.result is None:
            await out.send(Finished())
            return
        try:
            out.send_nowait(cell.result)
        except anyio.WouldBlock:
            await out.send(cell.result)  # backpressure: the consumer is slower


class ResultStream(StreamIterator[R]):
    """An async iterator of results in order; ``progress`` can be polled
    meanwhile.  Use it as an async context manager (or call ``aclose()``) to
    stop the fetches and wait for them when leaving early."""

    buffer = 1
    what = "results stream"

    def __init__(
        self,
        starter: Callable[[MemoryObjectSendStream[_Msg]], Awaitable[None]],
        spawn: Callable[[Callable[[], Awaitable[None]]], None],
        progress: ResultsProgress,
    ) -> None:
        super().__init__(starter, spawn, progress)
        self.progress = progress

    async def __anext__(self) -> R:
        result = await self._receive()
        progress = self.progress
        progress.items += 1
        if result.error is None:
            progress.ok += 1
            progress.bytes += result.nbytes
        else:
            progress.failed += 1
        if self._counters is not None:
            error = result.error
            self._counters.count_result(result.nbytes, None if error is None else error.kind)
        progress.next_offset = result.next_offset
        listing = progress.listing
        if listing is not None:
            progress.filter_mode = listing.filter_mode
        if self._hooks is not None:
            await self._tell(result)
        return result

    async def _tell(self, result: R) -> None:
        assert self._hooks is not None
        error = result.error
        event = ResultEvent(
            self._run,
            error is None,
            result.nbytes,
            result.next_offset,
            None if error is None else error.kind,
            None if error is None else error.status_code,
        )
        await emit(self._hooks.result, event)


class ResultIterator(ResultStream[ItemResult]):
    """``client.job_items.iter_results``: ``ItemResult``s in item order."""


class FileResultIterator(ResultStream[FileResult]):
    """``client.batches.iter_results``: ``FileResult``s in the batch's result
    order (``progress.next_offset``: the index of the next file)."""

"""The two ways to consume a scan.

* Plain ``async for``: ``PageIterator`` / ``ItemIterator`` start the producer in
  the client's own task group on first use and only await a memory stream.
  ``break`` (or an exception, or cancellation) drops the iterator; ``__del__``
  cancels the producer's scope at once, which cancels in-flight requests.  Call
  ``aclose()`` (or use ``contextlib.aclosing``) to also wait for the wind-down.
* ``async with client.job_items.scan(...) as pages:`` owns its task group, so
  the producer cannot outlive the block at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import PaginationError
from .._stats import Counters
from ..events import (
    Hooks,
    RunKind,
    ScanEvent,
    ScanPhase,
    current_run,
    emit,
    emit_now,
    new_run,
    set_run,
)
from ..events import snapshot as _snapshot
from .position import at_consumer
from .types import FilterMode, Page, ScanProgress, ScanState
from .walk import Failure, Finished

__all__ = [
    "CursorItemIterator",
    "ItemIterator",
    "PageIterator",
    "Scan",
    "Spawner",
    "Starter",
    "StreamIterator",
    "Tap",
    "items_of",
]

T = TypeVar("T")
M = TypeVar("M")

# Pages buffered between producer and consumer, beyond the planner's window.
_STREAM_BUFFER = 2

Starter = Callable[[MemoryObjectSendStream[Page[T] | Failure | Finished]], Awaitable[None]]
Spawner = Callable[[Callable[[], Coroutine[Any, Any, None]]], object]


class Tap(Protocol[T]):
    """A checkpoint's hold on one scan (``aiobatch.checkpoint``)."""

    async def room(self) -> None: ...
    def take(self, page: Page[T], filter_mode: FilterMode | None) -> Page[T]: ...
    def end(self, done: bool) -> None: ...


class _Unplaced(PaginationError):
    """A stream's own failure before the consumer's position is added."""

    def __init__(self, message: str) -> None:
        super().__init__(message, offset=-1)


class _Progress(Protocol):
    state: ScanState
    done: bool
    next_offset: int


class StreamIterator(Generic[M]):
    """The consumer's end of a producer task: the producer starts in ``spawn``'s
    task group on first use and hands messages through a bounded memory stream,
    ending it with ``Finished`` or a ``Failure``; stopping the iterator cancels
    the producer's scope (its requests) at once.  Subclasses turn a message into
    what they hand out (``__anext__``) and keep their progress."""

    #: Messages buffered between producer and consumer.
    buffer = 2
    #: What the error messages call it.
    what = "scan"
    #: Set by ``observe`` when the client has hooks: no event work otherwise.
    _hooks: Hooks | None = None
    _run = 0
    _kind: RunKind = "scan"
    _path = ""
    _parent: int | None = None
    #: Set by ``count``: the client's ``stats()`` counters.
    _counters: Counters | None = None
    #: The run's last event (finished, failed, stopped) was told.
    _ended = False

    def __init__(
        self,
        starter: Callable[[MemoryObjectSendStream[M | Failure | Finished]], Awaitable[None]],
        spawn: Spawner,
        progress: _Progress,
    ) -> None:
        self._starter = starter
        self._spawn = spawn
        self._progress = progress
        self._scope = anyio.CancelScope()
        self._finished = anyio.Event()
        self._recv: MemoryObjectReceiveStream[M | Failure | Finished] | None = None
        self._exhausted = False
        self._failure: Exception | None = None

    def __aiter__(self) -> Self:
        return self

    def observe(self, hooks: Hooks | None, kind: RunKind, path: str) -> Self:
        """Tell ``hooks`` (``"scan"`` events) how this run goes; the requests its
        producer makes carry its run number (``events.current_run()``)."""
        if hooks is not None:
            self._hooks, self._kind, self._path = hooks, kind, path
            self._run, self._parent = new_run(), current_run()
        return self

    def count(self, counters: Counters) -> Self:
        """Add what the consumer takes to the client's ``stats()``."""
        self._counters = counters
        return self

    def _settle(self) -> None:
        """Bring the counters up to what the consumer has received (per page)."""

    async def _event(self, phase: ScanPhase, *, items: int = 0, error: str | None = None) -> None:
        assert self._hooks is not None
        if phase in ("finished", "failed"):
            self._ended = True
        event = ScanEvent(
            phase,
            self._kind,
            self._run,
            self._path,
            _snapshot(self._progress),
            items,
            error,
            self._parent,
        )
        await emit(self._hooks.scan, event)

    def _stopped(self) -> None:
        # Reached from sync code (``_stop``, ``__del__``): a plain hook hears it
        # at once (even if the client closes next), an async one in a task of
        # the client's group; never awaited here.
        hooks = self._hooks
        if hooks is None or self._ended or self._recv is None:
            return
        self._ended = True
        event = ScanEvent(
            "stopped",
            self._kind,
            self._run,
            self._path,
            _snapshot(self._progress),
            parent=self._parent,
        )
        emit_now(hooks.scan, event, self._spawn)

    def _start(self) -> MemoryObjectReceiveStream[M | Failure | Finished]:
        send, recv = anyio.create_memory_object_stream[M | Failure | Finished](self.buffer)
        self._recv = recv
        scope, finished, starter = self._scope, self._finished, self._starter

        run_id = self._run

        async def run() -> None:
            if run_id:
                set_run(run_id)  # this task's own context: nothing leaks out
            try:
                with scope:
                    await starter(send)
            finally:
                send.close()
                finished.set()

        try:
            self._spawn(run)
        except BaseException:
            send.close()
            recv.close()
            raise
        return recv

    async def _receive(self) -> M:
        """The next message, or ``StopAsyncIteration`` at the end, or the failure."""
        if self._failure is not None:
            raise self._failure
        if self._exhausted:
            raise StopAsyncIteration
        if self._recv is None and self._hooks is not None:
            await self._event("started")
        recv = self._recv or self._start()
        progress = self._progress
        try:
            try:
                msg = recv.receive_nowait()  # no checkpoint when a message is waiting
            except anyio.WouldBlock:
                msg = await recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            # The producer always says Finished first; a stream that just ends
            # means it was stopped (the client closed): never a silent end.
            self._failure = self._stamp(
                _Unplaced(f"the {self.what} was stopped before its end (was the client closed?)")
            )
            self._stop()
            raise self._failure from None
        except BaseException:
            # Cancelled (or interrupted) while waiting: stop the requests now, and
            # make any later __anext__ fail loudly rather than end early.
            self._failure = self._stamp(_Unplaced(f"this {self.what} was cancelled while waiting"))
            self._stop()
            raise
        if isinstance(msg, Finished):
            self._exhausted = True
            self._settle()
            progress.state = "finished"
            progress.done = True
            if self._hooks is not None:
                await self._event("finished")
            raise StopAsyncIteration
        if isinstance(msg, Failure):
            self._settle()
            self._failure = self._stamp(msg.error)
            progress.state = "failed"
            self._ended = True  # told as "failed" below, not "stopped"
            self._stop()
            if self._hooks is not None:
                await self._event("failed", error=type(self._failure).__name__)
            raise self._failure
        return msg

    def _stamp(self, error: Exception) -> Exception:
        """The error to raise for a failure: a scan's consumer adds its own
        resume point here (the only place one is computed)."""
        if isinstance(error, _Unplaced):
            offset = self._progress.next_offset
            return PaginationError(f"{error}; resume with start_offset={offset}", offset=offset)
        return error

    def _stop(self) -> None:
        self._settle()
        if self._progress.state == "running":
            self._progress.state = "stopped"
        # Told whatever the state: the producer marks it "stopped" itself when
        # the client's close cancels it, and the run must still end.
        self._stopped()
        self._scope.cancel()
        if self._recv is not None:
            self._recv.close()

    async def aclose(self) -> None:
        """Stop and wait until the producer's requests are cancelled."""
        self._exhausted = True
        self._stop()
        if self._recv is not None:
            with anyio.CancelScope(shield=True):
                await self._finished.wait()

    def __del__(self) -> None:
        # Reached on `break` / error / cancellation in a plain `async for`.
        recv = getattr(self, "_recv", None)
        if recv is not None:
            self._settle()
            progress = self._progress
            if progress.state == "running":
                progress.state = "stopped"
            self._stopped()
            recv.close()
            # After the loop is gone there is nothing left to cancel.
            with contextlib.suppress(RuntimeError):
                self._scope.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PageIterator(StreamIterator[Page[T]]):
    """An async iterator of ``Page``s; ``progress`` can be polled meanwhile."""

    buffer = _STREAM_BUFFER

    def __init__(self, starter: Starter[T], spawn: Spawner, progress: ScanProgress) -> None:
        super().__init__(starter, spawn, progress)
        self.progress = progress
        #: Set by ``ItemIterator``: it moves ``items``/``next_offset`` per item.
        self._by_item = False
        #: Set with ``checkpoint=``: drops what is acknowledged, records the rest.
        self.tap: Tap[T] | None = None
        self._counted = 0  # items already added to the client's counters

    def _settle(self) -> None:
        counters = self._counters
        if counters is not None:
            items = self.progress.items
            counters.items += items - self._counted
            self._counted = items

    def _stamp(self, error: Exception) -> Exception:
        return at_consumer(error, self.progress)

    async def __anext__(self) -> Page[T]:
        tap = self.tap
        msg = await (self._receive() if tap is None else self._through(tap))
        # Counted here, as the consumer takes the page, so `progress` never runs
        # ahead of what the caller has really received (an item iterator counts
        # item by item instead).
        progress = self.progress
        progress.pages += 1
        if not self._by_item:
            progress.items += len(msg.items)
            progress.next_offset = msg.next_offset
            progress.next_token = msg.next_token
            progress.next_skip = msg.next_skip
        if self._counters is not None:
            self._counters.pages += 1
            self._settle()
        if self._hooks is not None:
            await self._event("page", items=len(msg.items))
        return msg

    async def _through(self, tap: Tap[T]) -> Page[T]:
        """The next page as a checkpoint hands it out."""
        await tap.room()
        try:
            page = await self._receive()
        except StopAsyncIteration:
            tap.end(self.progress.done)
            raise
        try:
            return tap.take(page, self.progress.filter_mode)
        except PaginationError as exc:  # the server repeats what was done before
            self._failure = self._stamp(exc)
            self.progress.state = "failed"
            self._stop()
            raise self._failure from None


class ItemIterator(Generic[T]):
    """An async iterator of items, page after page; ``progress`` as above.

    ``progress.items`` and ``progress.next_offset`` move item by item: after
    the consumer has received an item, ``next_offset`` is just past it.
    """

    def __init__(self, pages: PageIterator[T]) -> None:
        self.pages = pages
        self.progress = pages.progress
        pages._by_item = True
        self._items: list[T] = []
        self._positions: list[int] | None = None
        self._index = 0
        self._offset = 0  # where the current page starts
        self._page_end = pages.progress.next_offset
        self._page_token = pages.progress.next_token
        self._page_skip = pages.progress.next_skip
        #: Cursor scans: ``next_skip`` where the current page starts.
        self._start_skip = self._page_skip

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        i = self._index
        progress = self.progress
        if i < len(self._items):
            self._index = i + 1
            progress.items += 1
            pos = self._positions
            progress.next_offset = (pos[i] if pos is not None else self._offset + i) + 1
            return self._items[i]
        while True:
            # The whole current page was received: resume after it.
            progress.next_offset = self._page_end
            progress.next_token = self._page_token
            progress.next_skip = self._start_skip = self._page_skip
            page = await self.pages.__anext__()
            self._items, self._positions, self._index = page.items, page.positions, 0
            self._offset, self._page_end = page.offset, page.next_offset
            self._page_token, self._page_skip = page.next_token, page.next_skip
            if page.items:
                return await self.__anext__()

    async def aclose(self) -> None:
        # Drop the rest of the current page too: a closed iterator ends at once,
        # like an async generator after aclose(), instead of yielding leftovers.
        self._items, self._index = [], 0
        self._page_end = self.progress.next_offset  # nothing more was received
        self._page_token = self.progress.next_token
        self._page_skip = self.progress.next_skip
        await self.pages.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class CursorItemIterator(ItemIterator[T]):
    """An item iterator of a cursor scan: inside a page, the resume position is
    the token that fetched it plus the items received of it (``next_skip``)."""

    async def __anext__(self) -> T:
        item = await super().__anext__()
        i, pos = self._index, self._positions
        # A checkpoint's page lacks the items acknowledged already: it says
        # where each item sits in the page the token names.
        taken = i if pos is None else pos[i - 1] + 1 - self._offset
        self.progress.next_skip = self._start_skip + taken
        return item


def items_of(pages: PageIterator[T]) -> ItemIterator[T]:
    """The item iterator for a scan's pages (offset and cursor scans count apart)."""
    if pages.progress.style == "cursor":
        return CursorItemIterator(pages)
    return ItemIterator(pages)


class Scan(Generic[T]):
    """``async with`` form: the scan's task group lives exactly as long as the block."""

    def __init__(self, make: Callable[[Spawner], PageIterator[T]]) -> None:
        self._make = make
        self._tg: TaskGroup | None = None
        self._pages: PageIterator[T] | None = None

    async def __aenter__(self) -> PageIterator[T]:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        tg = self._tg
        self._pages = self._make(lambda fn: tg.start_soon(fn))
        return self._pages

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        assert self._pages is not None
        self._pages._stop()
        # The producer never raises (its errors travel down the stream), so the
        # group has nothing to add: the block's own exception propagates as it
        # is, never wrapped in an ExceptionGroup.
        await self._tg.__aexit__(None, None, None)
        return None

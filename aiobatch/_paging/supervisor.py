"""The task group that plain ``async for`` scans run in.

It lives in a task of its own, owned by the client: the client can then be
opened in one task and closed in another (a pytest fixture, a web app's
lifespan) without anyio's "exit cancel scope in a different task" error, while
every scan stays a child of one task group that ``aclose()`` cancels and awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup

__all__ = ["Supervisor"]


class Supervisor:
    def __init__(self) -> None:
        self._tg: TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = anyio.Event()

    async def start(self) -> None:
        ready = anyio.Event()
        self._task = asyncio.create_task(self._run(ready), name="aiobatch-scans")
        await ready.wait()

    async def _run(self, ready: anyio.Event) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            ready.set()
            await self._closing.wait()
            tg.cancel_scope.cancel()
        self._tg = None

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._tg is None:
            raise RuntimeError("the scan supervisor is not running")
        self._tg.start_soon(fn)

    async def aclose(self) -> None:
        """Cancel every running scan and wait until they are gone."""
        self._closing.set()
        task, self._task = self._task, None
        if task is not None:
            with anyio.CancelScope(shield=True):
                await task

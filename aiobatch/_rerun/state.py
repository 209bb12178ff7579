"""Where ``retry_failed(state=...)`` keeps its plan between calls: a file, or
any object with ``load``/``save`` (a service's own database)."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import AsyncIterator, Awaitable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio

from .plan import RetryPlan

__all__ = ["RetryStateStore", "load_plan", "one_at_a_time", "save_plan", "state_store"]


@runtime_checkable
class RetryStateStore(Protocol):
    """A place for one re-run's plan (``RetryPlan.to_json()``), so that calling
    ``client.jobs.retry_failed(job_id, state=store)`` again resumes the first
    call instead of creating its jobs twice.

    ``load()`` returns what the last ``save`` got (``None`` before the first);
    ``save(data)`` must have kept ``data`` when it returns: the run saves before
    each create is sent.  Either may be a coroutine function.  Calls in one
    process that share a store (the same object, or the same file) run one
    after the other, so a second one resumes the first; across processes, a
    store shared by several must serialize the calls itself (e.g. a row lock).
    """

    def load(self) -> Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None: ...

    def save(self, data: dict[str, Any]) -> Awaitable[None] | None: ...


class FileStore:
    """A JSON file, replaced atomically and flushed to disk on every save: a
    crash leaves the old plan or the new one, never half of one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: The file, whatever path names it (calls sharing it take turns).
        self.key = os.path.realpath(self.path)

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"

    def load(self) -> Mapping[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"retry state file {self.path} is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"retry state file {self.path} does not hold a JSON object")
        return data

    async def save(self, data: dict[str, Any]) -> None:
        text = json.dumps(data)
        # In a thread, and finished even if the caller is cancelled meanwhile:
        # the record of a create about to be sent must be on disk first.
        await anyio.to_thread.run_sync(self._write, text)

    def _write(self, text: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def state_store(state: str | os.PathLike[str] | RetryStateStore) -> RetryStateStore:
    if isinstance(state, str | os.PathLike):
        return FileStore(state)
    if not isinstance(state, RetryStateStore):
        raise TypeError(
            "state must be a path or an object with load() and save(data), "
            f"got {type(state).__name__}"
        )
    return state


async def load_plan(store: RetryStateStore, job_id: str) -> RetryPlan | None:
    data = store.load()
    if inspect.isawaitable(data):
        data = await data
    if data is None:
        return None
    try:
        plan = RetryPlan.from_json(dict(data))
    except (TypeError, ValueError) as exc:
        where = _where(store)
        raise ValueError(f"retry state {where} is unreadable or was edited: {exc}") from None
    if plan.source_job_id != job_id:
        raise ValueError(
            f"retry state {_where(store)} belongs to job {plan.source_job_id}, not {job_id}"
        )
    return plan


def _where(store: RetryStateStore) -> str:
    # A service's store may print its connection string: name only its type.
    return str(store.path) if isinstance(store, FileStore) else f"({type(store).__name__})"


async def save_plan(store: RetryStateStore | None, plan: RetryPlan) -> None:
    if store is None:
        return
    done = store.save(plan.to_json())
    if inspect.isawaitable(done):
        await done


#: The calls of this process holding a store, by its key: (lock, users).
_HELD: dict[object, tuple[anyio.Lock, int]] = {}


@contextlib.asynccontextmanager
async def one_at_a_time(store: RetryStateStore) -> AsyncIterator[None]:
    """Hold ``store`` for one call: a concurrent call with it waits its turn
    (then reads what the first saved) instead of planning the same chunks."""
    key: object = store.key if isinstance(store, FileStore) else id(store)
    lock, users = _HELD.get(key, (anyio.Lock(), 0))
    _HELD[key] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = _HELD[key]
        if users == 1:
            del _HELD[key]
        else:
            _HELD[key] = (lock, users - 1)

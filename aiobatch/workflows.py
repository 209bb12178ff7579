"""Workflows over the batch API: follow a job to its end (``JobWatch``, behind
``client.jobs.watch`` / ``client.jobs.wait``), and re-run the failed items of a
job (``RetryPlan``, behind ``client.jobs.retry_failed``).

Both take their time (``sleep``, ``monotonic``) from the client's ``RetryPolicy``,
so tests drive them with a fake clock and never sleep for real.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Self, TypeVar

from ._errors import BatchFailedError, BatchWaitTimeoutError, JobFailedError, JobWaitTimeoutError
from ._retry import RetryPolicy
from .events import Hooks, WaitEvent, WaitPhase, current_run, emit, in_run, new_run
from .models import Batch, BatchJobStatus, BatchStatus, JobStatus

__all__ = [
    "BatchWatch",
    "JobWatch",
    "RetryChunk",
    "RetryPlan",
    "StatusWatch",
    "plan_chunks",
    "status_key",
]

#: Polling slows by this factor while nothing changes (up to ``max_interval``).
BACKOFF = 1.5

S = TypeVar("S")


def status_key(status: BatchJobStatus) -> tuple[object, ...]:
    """What counts as a change of a job: its status and its counts (not
    ``updated_at``, which a running job moves on every poll)."""
    j = status.job
    return (
        str(j.status),
        j.total_items,
        j.processed_items,
        j.failed_items,
        j.skipped_items,
        status.progress_percentage,
    )


def check_seconds(name: str, value: float | None, *, none_ok: bool, zero_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name} must be > 0, got {value!r}")


class StatusWatch(Generic[S]):
    """Follow something that ends (a v1 job, a v2 batch) by polling it: each
    status that differs from the one before (by ``key``; the first poll always
    counts), ending after the first ``terminal`` one.

    Polls every ``poll_interval`` seconds while it moves, slowing by 1.5× per
    unchanged poll up to ``max_interval``.  Transient errors are retried by the
    client's policy (inside each poll).  Past ``timeout`` seconds without a
    terminal status, the error ``timed_out`` builds is raised.  Cancelling the
    consumer stops at once: there is no background task.
    """

    #: What is followed, for messages ("job", "batch").
    noun = "thing"

    def __init__(
        self,
        ident: str,
        fetch: Callable[[], Awaitable[S]],
        policy: RetryPolicy,
        *,
        poll_interval: float = 2.0,
        max_interval: float = 30.0,
        timeout: float | None = None,
    ) -> None:
        check_seconds("poll_interval", poll_interval, none_ok=False)
        check_seconds("max_interval", max_interval, none_ok=False)
        check_seconds("timeout", timeout, none_ok=True, zero_ok=True)
        if max_interval < poll_interval:
            raise ValueError(
                f"max_interval ({max_interval}) must be >= poll_interval ({poll_interval})"
            )
        self.ident = ident
        self._fetch = fetch
        self._policy = policy
        self.poll_interval = float(poll_interval)
        self.max_interval = float(max_interval)
        self.timeout = timeout
        #: The last status seen (changed or not); ``None`` before the first poll.
        self.last: S | None = None
        #: Polls made so far.
        self.polls = 0
        self._interval = self.poll_interval
        self._deadline: float | None = None
        self._key: tuple[object, ...] | None = None
        self._done = False
        self._hooks: Hooks | None = None

    def observe(self, hooks: Hooks | None) -> Self:
        """Tell ``hooks`` (``"wait"`` events) each status change; the polls carry
        this wait's run number (``events.current_run()``)."""
        if hooks is not None:
            self._hooks, self._run, self._parent = hooks, new_run(), current_run()
            self._began: float | None = None
        return self

    # --- what a subclass says about its status type ---

    def key(self, status: S) -> tuple[object, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def terminal(self, status: S) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self, status: S) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def succeeded(self, status: S) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def timeout_error(self, message: str) -> Exception:  # pragma: no cover - abstract
        raise NotImplementedError

    def failure_error(self, status: S) -> Exception:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- the loop ---

    def __aiter__(self) -> Self:
        return self

    def _timed_out(self) -> Exception:
        where = f": still {self.state(self.last)}" if self.last is not None else ""
        return self.timeout_error(
            f"{self.noun} {self.ident} did not end within {self.timeout:g} s{where}"
        )

    async def __anext__(self) -> S:
        if self._hooks is None:
            return await self._next()
        if self._began is None:
            self._began = self._policy.monotonic()
            await self._tell("started", None)
        try:
            with in_run(self._run):
                status = await self._next()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            timed_out = isinstance(exc, JobWaitTimeoutError | BatchWaitTimeoutError)
            await self._tell("timed_out" if timed_out else "failed", type(exc).__name__)
            raise
        await self._tell("status", None)
        return status

    async def _tell(self, phase: WaitPhase, error: str | None) -> None:
        assert self._hooks is not None
        assert self._began is not None
        last = self.last
        event = WaitEvent(
            phase,
            self._run,
            self.noun,
            None if last is None else self.state(last),
            self._done,
            self.polls,
            self._policy.monotonic() - self._began,
            error,
            self._parent,
        )
        await emit(self._hooks.wait, event)

    async def _next(self) -> S:
        if self._done:
            raise StopAsyncIteration
        policy = self._policy
        if self._deadline is None and self.timeout is not None:
            self._deadline = policy.monotonic() + self.timeout
        while True:
            if self.polls:
                delay = self._interval
                if self._deadline is not None:
                    left = self._deadline - policy.monotonic()
                    if left <= 0:
                        raise self._timed_out()
                    delay = min(delay, left)
                await policy.sleep(delay)
            status = await self._fetch()
            self.polls += 1
            self.last = status
            key = self.key(status)
            changed = key != self._key
            self._key = key
            # Tighten while it moves, back off gently while it does not.
            self._interval = (
                self.poll_interval if changed else min(self.max_interval, self._interval * BACKOFF)
            )
            if self.terminal(status):
                self._done = True
                return status
            if changed:
                return status
            if self._deadline is not None and policy.monotonic() >= self._deadline:
                raise self._timed_out()

    async def wait(
        self,
        on_progress: Callable[[S], Any] | None = None,
        *,
        raise_on_failure: bool = False,
    ) -> S:
        """Run the watch to its end; the final status.  ``on_progress`` (a function
        or a coroutine function) gets every status yielded; ``raise_on_failure``
        raises ``failure_error`` for a terminal status that is not a success."""
        async for status in self:
            if on_progress is not None:
                result = on_progress(status)
                if inspect.isawaitable(result):
                    await result
        final = self.last
        assert final is not None  # the watch ends only after a terminal status
        if raise_on_failure and not self.succeeded(final):
            raise self.failure_error(final)
        return final


class JobWatch(StatusWatch[BatchJobStatus]):
    """``async for status in client.jobs.watch(job_id)``: each status of the job
    that differs from the one before (status and counts), ending after the first
    terminal one (``completed``, ``failed``, ``cancelled``; a status the client
    does not know is not terminal).  Timeout: ``JobWaitTimeoutError`` (carrying
    ``last``); failure (``raise_on_failure``): ``JobFailedError``.
    """

    noun = "job"

    @property
    def job_id(self) -> str:
        return self.ident

    def key(self, status: BatchJobStatus) -> tuple[object, ...]:
        return status_key(status)

    def terminal(self, status: BatchJobStatus) -> bool:
        return status.job.status.terminal

    def state(self, status: BatchJobStatus) -> str:
        return str(status.job.status)

    def succeeded(self, status: BatchJobStatus) -> bool:
        return status.job.status == JobStatus.COMPLETED

    def timeout_error(self, message: str) -> JobWaitTimeoutError:
        return JobWaitTimeoutError(
            message, job_id=self.ident, timeout=float(self.timeout or 0.0), status=self.last
        )

    def failure_error(self, status: BatchJobStatus) -> JobFailedError:
        return JobFailedError(
            f"job {status.job.id} ended {status.job.status}"
            + (f": {status.job.error_message}" if status.job.error_message else ""),
            status=status,
        )


class BatchWatch(StatusWatch[Batch]):
    """``async for batch in client.batches.watch(batch_id)``: each change of a v2
    batch's status until it ends (``COMPLETED``, ``FAILED``, ``CANCELLED``;
    ``THROTTLED`` and statuses the client does not know are not terminal).
    Timeout: ``BatchWaitTimeoutError``; failure (``raise_on_failure``):
    ``BatchFailedError``.
    """

    noun = "batch"

    @property
    def batch_id(self) -> str:
        return self.ident

    def key(self, status: Batch) -> tuple[object, ...]:
        return (str(status.status),)

    def terminal(self, status: Batch) -> bool:
        return status.status.terminal

    def state(self, status: Batch) -> str:
        return str(status.status)

    def succeeded(self, status: Batch) -> bool:
        return status.status == BatchStatus.COMPLETED

    def timeout_error(self, message: str) -> BatchWaitTimeoutError:
        return BatchWaitTimeoutError(
            message, batch_id=self.ident, timeout=float(self.timeout or 0.0), batch=self.last
        )

    def failure_error(self, status: Batch) -> BatchFailedError:
        return BatchFailedError(f"batch {status.id} ended {status.status}", batch=status)


# --- re-running failed items ---------------------------------------------------


def chunk_key(item_ids: Sequence[str]) -> str:
    """A chunk's fingerprint: the same items give the same key, in any run."""
    digest = hashlib.blake2b(digest_size=12)
    for item_id in item_ids:
        digest.update(item_id.encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class RetryChunk:
    """Items re-run together as one new job (``job_id`` once created)."""

    index: int
    item_ids: tuple[str, ...]
    key: str
    job_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.item_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "key": self.key,
            "job_id": self.job_id,
            "item_ids": list(self.item_ids),
        }

    @classmethod
    def from_json(cls, data: Any) -> RetryChunk:
        if not isinstance(data, dict):
            raise ValueError("a retry chunk must be a JSON object")
        ids, job_id, index = data.get("item_ids"), data.get("job_id"), data.get("index")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
            raise ValueError("a retry chunk's item_ids must be a non-empty list of strings")
        if job_id is not None and not isinstance(job_id, str):
            raise ValueError("a retry chunk's job_id must be a string or null")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError("a retry chunk's index must be an integer")
        chunk = cls(index, tuple(ids), chunk_key(ids), job_id)
        if data.get("key") not in (None, chunk.key):
            raise ValueError(f"retry chunk {index}: its key does not match its item ids (edited?)")
        return chunk


@dataclass(slots=True)
class RetryPlan:
    """What ``client.jobs.retry_failed`` did, or would do (``dry_run``).

    The chunk plan is deterministic: the items to re-run, sorted by id, cut into
    ``chunk_size`` pieces; a chunk's ``key`` fingerprints its items.  Chunks with
    a ``job_id`` were created (in this run or, ``earlier``, in the run passed as
    ``already_created=``); the rest were not.  Passing this plan back as
    ``already_created=`` re-runs only the items no created chunk holds, so a
    rerun never submits an item twice.  ``uncertain`` chunks are those whose
    create may have reached the server without an answer (a lost connection, a
    500/502/504): they are never resubmitted by a rerun (check
    ``client.jobs.list()`` and pass ``job_config``/ids yourself if the job is
    missing); ``not_submitted`` lists their items with the other leftovers.
    """

    source_job_id: str
    statuses: tuple[str, ...]
    chunk_size: int
    dry_run: bool = False
    #: Chunks of this run, in order (``job_id`` set once created).
    chunks: list[RetryChunk] = field(default_factory=list)
    #: Chunks created by earlier runs (from ``already_created``).
    earlier: list[RetryChunk] = field(default_factory=list)
    #: Chunks whose create may or may not have happened (never resubmitted).
    uncertain: list[RetryChunk] = field(default_factory=list)
    #: Items found with the statuses (this run's scan).
    found: int = 0
    #: Where the job configuration came from ("job_config argument", "item itm_...").
    config_source: str | None = None

    @property
    def created(self) -> list[RetryChunk]:
        """Every chunk that has a job, earlier runs included."""
        return [*self.earlier, *(c for c in self.chunks if c.job_id is not None)]

    @property
    def pending(self) -> list[RetryChunk]:
        """Chunks of this run that were not created (and are not uncertain)."""
        doubtful = {c.key for c in self.uncertain}
        return [c for c in self.chunks if c.job_id is None and c.key not in doubtful]

    @property
    def job_ids(self) -> list[str]:
        return [c.job_id for c in self.created if c.job_id is not None]

    @property
    def not_submitted(self) -> list[str]:
        """Items this run could not (or did not, ``dry_run``) put in a new job."""
        return [i for c in (*self.pending, *self.uncertain) for i in c.item_ids]

    @property
    def complete(self) -> bool:
        return not self.dry_run and not self.pending and not self.uncertain

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (the CLI's state file); ``from_json`` reads it back."""
        return {
            "source_job_id": self.source_job_id,
            "statuses": list(self.statuses),
            "chunk_size": self.chunk_size,
            "created": [c.to_json() for c in self.created],
            "uncertain": [c.to_json() for c in self.uncertain],
        }

    @classmethod
    def from_json(cls, data: Any) -> RetryPlan:
        if not isinstance(data, dict) or not isinstance(data.get("source_job_id"), str):
            raise ValueError("a retry plan must be a JSON object with source_job_id")
        statuses, size = data.get("statuses", []), data.get("chunk_size", 1)
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            raise ValueError("a retry plan's statuses must be a list of strings")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError("a retry plan's chunk_size must be an integer >= 1")
        created = [RetryChunk.from_json(c) for c in data.get("created", [])]
        if any(c.job_id is None for c in created):
            raise ValueError("a created retry chunk must have a job_id")
        uncertain = [RetryChunk.from_json(c) for c in data.get("uncertain", [])]
        return cls(
            data["source_job_id"], tuple(statuses), size, earlier=created, uncertain=uncertain
        )


def plan_chunks(
    item_ids: Iterable[str], chunk_size: int, already: RetryPlan | Iterable[RetryChunk] | None
) -> tuple[list[RetryChunk], list[RetryChunk], list[RetryChunk]]:
    """``(new chunks, earlier created chunks, earlier uncertain chunks)``: the
    items no earlier chunk holds, sorted, cut into ``chunk_size`` pieces."""
    earlier: list[RetryChunk] = []
    doubtful: list[RetryChunk] = []
    if isinstance(already, RetryPlan):
        earlier, doubtful = list(already.created), list(already.uncertain)
    elif already is not None:
        for chunk in already:
            (earlier if chunk.job_id is not None else doubtful).append(chunk)
    covered = {i for c in (*earlier, *doubtful) for i in c.item_ids}
    todo = sorted(set(item_ids) - covered)
    start = max((c.index + 1 for c in (*earlier, *doubtful)), default=0)
    chunks = []
    for n, lo in enumerate(range(0, len(todo), chunk_size)):
        ids = tuple(todo[lo : lo + chunk_size])
        chunks.append(RetryChunk(start + n, ids, chunk_key(ids)))
    return chunks, earlier, doubtful


def with_job(chunk: RetryChunk, job_id: str) -> RetryChunk:
    return replace(chunk, job_id=job_id)

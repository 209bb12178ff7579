"""Workflows over the batch API: follow a job to its end (``JobWatch``, behind
``client.jobs.watch`` / ``client.jobs.wait``), and re-run the failed items of a
job (``RetryPlan``, behind ``client.jobs.retry_failed``: the run itself lives in
``aiobatch._rerun``; its plan types are importable from here as before).

Both take their time (``sleep``, ``monotonic``) from the client's ``RetryPolicy``,
so tests drive them with a fake clock and never sleep for real.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Self, TypeVar

import anyio

from ._checks import check_seconds
from ._errors import BatchFailedError, BatchWaitTimeoutError, JobFailedError, JobWaitTimeoutError
from ._rerun.plan import RetryChunk, RetryPlan, plan_chunks
from ._retry import DeadlineReached, RetryPolicy, deadline
from .events import Hooks, WaitEvent, WaitPhase, current_run, emit, emit_now, in_run, new_run
from .models import Batch, BatchJobStatus, BatchStatus, JobStatus

__all__ = [
    "BatchResultsWatch",
    "BatchWatch",
    "JobWatch",
    "RetryChunk",
    "RetryPlan",
    "StatusWatch",
    "plan_chunks",
    "results_state",
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


class StatusWatch(Generic[S]):
    """Follow something that ends (a v1 job, a v2 batch) by polling it: each
    status that differs from the one before (by ``key``; the first poll always
    counts), ending after the first ``terminal`` one.

    Polls every ``poll_interval`` seconds while it moves, slowing by 1.5× per
    unchanged poll up to ``max_interval``.  Transient errors are retried by the
    client's policy (inside each poll).  ``timeout`` is a deadline: at
    ``timeout`` seconds without a terminal status, the poll in flight is cut,
    no retry sleeps past it, and the error ``timeout_error`` builds is raised.
    Cancelling the consumer stops at once: there is no background task.

    Observed (``event_hooks``), a watch's ``wait`` events end with its last
    status, a timeout, a failure, or ``"stopped"``: when it is cancelled, closed
    (``aclose()``, ``async with``) or dropped unfinished (a ``break`` out of a
    plain ``async for``), so a trace never keeps a wait span open.
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
        self._began: float | None = None
        self._ended = False
        self._spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object] | None = None

    def observe(
        self,
        hooks: Hooks | None,
        *,
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object] | None = None,
    ) -> Self:
        """Tell ``hooks`` (``"wait"`` events) each status change; the polls carry
        this wait's run number (``events.current_run()``).  ``spawn`` (the
        client's task group) tells a watch dropped unfinished as ``"stopped"``."""
        if hooks is not None:
            self._hooks, self._run, self._parent = hooks, new_run(), current_run()
            self._spawn = spawn
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

    def label(self, status: S) -> str:  # pragma: no cover - abstract
        """The status as a ``WaitEvent`` says it: a value the API lists, or
        ``"unknown"`` (server text never reaches a hook or a span)."""
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
        if self._hooks is None or self._ended:
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
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._tell("stopped", None)
            raise
        await self._tell("status", None)
        return status

    async def aclose(self) -> None:
        """Stop following: an observed watch not at its end tells ``"stopped"``."""
        if self._began is not None and not self._ended:
            with anyio.CancelScope(shield=True):
                await self._tell("stopped", None)
        self._done = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # A `break` out of a plain `async for` drops the watch: a plain hook
        # hears it at once, an async one in a task of the client's group.
        spawn = getattr(self, "_spawn", None)
        if spawn is None or self._hooks is None or self._began is None or self._ended:
            return
        emit_now(self._hooks.wait, self._event("stopped", None), spawn)

    async def _tell(self, phase: WaitPhase, error: str | None) -> None:
        assert self._hooks is not None
        await emit(self._hooks.wait, self._event(phase, error))

    def _event(self, phase: WaitPhase, error: str | None) -> WaitEvent:
        assert self._began is not None
        if phase != "started" and (phase != "status" or self._done):
            self._ended = True
        last = self.last
        return WaitEvent(
            phase,
            self._run,
            self.noun,
            None if last is None else self.label(last),
            self._done,
            self.polls,
            self._policy.monotonic() - self._began,
            error,
            self._parent,
        )

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
            status = await self._poll()
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

    async def _poll(self) -> S:
        """One poll, its retries included, cut at the deadline: the poll in
        flight is cancelled there, and no retry sleeps past it.  ``timeout=0``
        allows its first poll one attempt, not retried; a later poll reached at
        the deadline (its sleep ended there) is not sent: nothing would bound it."""
        if self._deadline is None:
            return await self._fetch()
        left = self._deadline - self._policy.monotonic()
        if left <= 0 and self.polls:
            raise self._timed_out()
        cause: BaseException | None = None
        try:
            with deadline(self._deadline):
                if left <= 0:
                    return await self._fetch()
                with anyio.move_on_after(left):
                    return await self._fetch()
        except DeadlineReached as exc:
            cause = exc.__cause__  # the failure the next retry would have answered
        raise self._timed_out() from cause

    async def wait(
        self,
        on_progress: Callable[[S], Any] | None = None,
        *,
        raise_on_failure: bool = False,
    ) -> S:
        """Run the watch to its end; the final status.  ``on_progress`` (a function
        or a coroutine function) gets every status yielded; ``raise_on_failure``
        raises ``failure_error`` for a terminal status that is not a success."""
        try:
            async for status in self:
                if on_progress is not None:
                    result = on_progress(status)
                    if inspect.isawaitable(result):
                        await result
        finally:
            await self.aclose()  # an ``on_progress`` that raised leaves it unfinished
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

    def label(self, status: BatchJobStatus) -> str:
        return _label(status.job.status)

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

    def label(self, status: Batch) -> str:
        return _label(status.status)

    def succeeded(self, status: Batch) -> bool:
        return status.status == BatchStatus.COMPLETED

    def timeout_error(self, message: str) -> BatchWaitTimeoutError:
        return BatchWaitTimeoutError(
            message, batch_id=self.ident, timeout=float(self.timeout or 0.0), batch=self.last
        )

    def failure_error(self, status: Batch) -> BatchFailedError:
        return BatchFailedError(f"batch {status.id} ended {status.status}", batch=status)


class BatchResultsWatch(BatchWatch):
    """A batch followed (with ``expand=results``) until it ends *with* its result
    mappings: they may be null for a while after the batch is ``COMPLETED``."""

    def key(self, status: Batch) -> tuple[object, ...]:
        return (str(status.status), status.results is not None)

    def terminal(self, status: Batch) -> bool:
        ended = status.status.terminal
        return ended and (status.results is not None or status.status != BatchStatus.COMPLETED)

    def state(self, status: Batch) -> str:
        return results_state(status)


def _label(status: JobStatus | BatchStatus) -> str:
    return str(status) if status.known else "unknown"


def results_state(batch: Batch) -> str:
    """``COMPLETED, its results not available yet``: a batch as a results reader sees it."""
    if batch.status.terminal and batch.results is None:
        return f"{batch.status}, its results not available yet"
    return str(batch.status)

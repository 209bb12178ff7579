"""Simulated jobs: the description (``SimJob``), the clock, and a job's state at
one instant (``View``), which answers counts and pages without materialising items.

A running job processes items in index order at ``rate`` items per second with
``concurrency`` in flight, so at any instant the job is three contiguous runs: a
done prefix (final statuses from the mix), a processing window, and a pending
(or, after a cancel, cancelled) suffix.  Counting and selecting stay O(page).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._layout import (
    CANCELLED,
    CODE,
    DEFAULT_MIX,
    PENDING,
    PROCESSING,
    STATUSES,
    ExplicitLayout,
    StatusLayout,
    mix_weights,
)

__all__ = ["DEFAULT_EPOCH", "JobState", "SimClock", "SimItem", "SimJob", "View"]

#: Where the timestamps of jobs that are not running start: 2024-09-01T08:00:00Z.
DEFAULT_EPOCH = 1725177600.0
JOB_TYPES = ("parse", "extract", "classify")
#: Largest extra delay (ms) of an item's completion in a job that is not running.
JITTER_MS = 0x3FFF
JOB_STATUSES = ("pending", "running", "dispatched", "completed", "failed", "cancelled")


#: Statuses whose items have a processing job (so a ``job_id``).
_WITH_JOB = ("processing", "completed", "failed")


@dataclass(frozen=True, slots=True)
class SimItem:
    """One item of a job described item by item (``SimJob(items=[...])``).

    ``name`` (None: a generated one), ``error`` (the ``error_message`` of a
    ``failed`` item; None: a generated one) and ``job_id`` (the processing job
    of a ``processing``, ``completed`` or ``failed`` item; None: a generated
    one).  A processing job is a parse job like any other: its result is served
    (``sim.parse_result(job_id)``), or fails as the job's knobs say."""

    status: str = "completed"
    name: str | None = None
    error: str | None = None
    job_id: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"item status must be one of {STATUSES}, got {self.status!r}")
        if self.error is not None and self.status != "failed":
            raise ValueError(f"only a failed item has an error (this one is {self.status})")
        if self.job_id is not None:
            if self.status not in _WITH_JOB:
                raise ValueError(
                    f"a {self.status} item has no processing job; job_id needs one of {_WITH_JOB}"
                )
            if not self.job_id or not self.job_id.isprintable() or "/" in self.job_id:
                raise ValueError(f"job_id must be printable, without '/': {self.job_id!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError("name must be a string")


def _explicit_items(items: Sequence[SimItem | str]) -> tuple[SimItem, ...]:
    out = tuple(SimItem(status=i) if isinstance(i, str) else i for i in items)
    if not all(isinstance(i, SimItem) for i in out):
        raise ValueError("items must be SimItem objects or status names")
    ids = [i.job_id for i in out if i.job_id is not None]
    if len(ids) != len(set(ids)):
        raise ValueError("two items share a job_id")
    return out


@dataclass(frozen=True, slots=True)
class SimJob:
    """A simulated batch job, described rather than stored.

    Item ``i`` is a pure function of ``(seed, i)`` (and, for a running job, of the
    clock).  ``mix`` weighs the six item statuses; a running job ignores the
    pending/processing weights because its progress decides those.  A job that
    is not running but has pending/processing items is a frozen snapshot of a
    live job and reports status "running" (set ``status`` to override).
    """

    job_id: str = "bjb-sim-0001"
    total_items: int = 1000
    seed: int = 0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    job_type: str = "parse"
    running: bool = False
    #: Items started per second; also spaces the timestamps of finished jobs.
    rate: float = 50.0
    #: Items processing at once in a running job (each takes concurrency/rate s).
    concurrency: int = 8
    #: Epoch seconds.  None: DEFAULT_EPOCH, or the clock at start for running jobs.
    created_at: float | None = None
    #: Seconds between creation and the first item starting (job is "pending").
    start_delay: float = 0.0
    project_id: str = "5d3c1f0e-7a51-4c2b-9a8e-3f9b1c2d4e5f"
    directory_id: str | None = "dir-7f3a9c21-sim"
    #: Force the job's status (e.g. "failed"); None derives it from the items.
    status: str | None = None
    error_message: str | None = None
    #: The job_config reported in processing results; None: a realistic default.
    job_config: Mapping[str, Any] | None = None
    # -- where items' output lives (parse results, classify results) --------
    #: One item in three gets a hostile name (``../../etc/passwd``, NUL,
    #: control characters, 300 characters, duplicates, case twins...).
    hostile_names: bool = False
    #: Characters of a parse result: log-uniform between these two.
    result_bytes: tuple[int, int] = (200, 16_384)
    #: About one result in this many is ``large_result_bytes`` long (0: none).
    large_result_every: int = 0
    large_result_bytes: int = 4 * 1024 * 1024
    #: About one completed item in this many has a parse job in ERROR (0: none).
    result_error_every: int = 40
    #: About one item in this many has no parse job record at all: 404 (0: none).
    result_missing_every: int = 50

    #: The items one by one (``SimItem``s, or status names: ``["completed",
    #: "failed"]``), in server order, instead of ``mix``; ``total_items`` is then
    #: their number.  Not for a running job (its progress decides statuses).
    items: Sequence[SimItem | str] | None = None

    def __post_init__(self) -> None:
        if not self.job_id or "/" in self.job_id:
            raise ValueError("job_id must be a non-empty string without '/'")
        if self.items is not None:
            if self.running:
                raise ValueError("a running job cannot have explicit items")
            items = _explicit_items(self.items)
            object.__setattr__(self, "items", items)
            object.__setattr__(self, "total_items", len(items))
        if self.total_items < 0:
            raise ValueError("total_items must be >= 0")
        if self.job_type not in JOB_TYPES:
            raise ValueError(f"job_type must be one of {JOB_TYPES}")
        if not self.rate > 0 or self.concurrency < 1:
            raise ValueError("rate must be > 0 and concurrency >= 1")
        if self.status is not None and self.status not in JOB_STATUSES:
            raise ValueError(f"status must be one of {JOB_STATUSES}")
        mix_weights(self.mix, final_only=self.running)  # fail at construction, not per request
        lo, hi = self.result_bytes
        if not 0 <= lo <= hi or self.large_result_bytes < 0:
            raise ValueError(
                "need 0 <= result_bytes[0] <= result_bytes[1], large_result_bytes >= 0"
            )
        if min(self.large_result_every, self.result_error_every, self.result_missing_every) < 0:
            raise ValueError("the *_every knobs must be >= 0 (0 turns them off)")


class SimClock:
    """Epoch seconds for the simulator: real time (plus any ``advance``) by
    default; ``frozen=True`` only moves when told, so tests are deterministic."""

    def __init__(self, start: float | datetime | None = None, *, frozen: bool = False) -> None:
        if isinstance(start, datetime):
            start = start.timestamp()
        self.frozen = frozen
        self._base = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every ``advance`` (the simulator's webhooks use it)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    @classmethod
    def frozen_at(cls, start: float | datetime = DEFAULT_EPOCH) -> SimClock:
        return cls(start, frozen=True)

    def now(self) -> float:
        t = self._base + self._offset
        if not self.frozen:
            t += time.monotonic() - self._mono0
        return t

    __call__ = now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds
        for callback in list(self._listeners):
            callback()

    def __repr__(self) -> str:
        return f"<SimClock now={self.now():.3f} frozen={self.frozen}>"


def job_key(job_id: str) -> str:
    """Short stable key embedded in item ids, so an item id leads back to its job."""
    return hashlib.blake2b(job_id.encode(), digest_size=4).hexdigest()


class JobState:
    """One job inside a running simulator: the description plus what happened to it."""

    def __init__(self, job: SimJob, *, now: float) -> None:
        self.job = job
        self.key = job_key(job.job_id)
        #: The job's items one by one, when it was described so (``SimJob.items``).
        self.explicit: tuple[SimItem, ...] | None = (
            None if job.items is None else tuple(job.items)  # type: ignore[arg-type]
        )
        self.layout = (
            StatusLayout(job.total_items, mix_weights(job.mix, final_only=job.running), job.seed)
            if job.items is None
            else ExplicitLayout(bytes(CODE[i.status] for i in self.explicit or ()))
        )
        self.created_at = (
            job.created_at
            if job.created_at is not None
            else (now if job.running else DEFAULT_EPOCH)
        )
        self.start = self.created_at + job.start_delay
        self.cancelled_at: float | None = None
        self.cancel_reason: str | None = None
        #: A job created with ``item_ids``: item i is that item again, as
        #: ``(item_id, item_name as a JSON string fragment)``; None: generated.
        self.sources: list[tuple[str, str]] | None = None

    def progress(self, t: float) -> tuple[int, int]:
        """``(done, started)`` at time ``t``: item i starts at ``start + i/rate`` and
        completes ``concurrency/rate`` seconds later."""
        job = self.job
        if not job.running:
            return job.total_items, job.total_items
        if t < self.start:
            return 0, 0
        # The epsilon keeps exact boundaries (e.g. 3.0 s * 10/s) from flooring down.
        ticks = math.floor((t - self.start) * job.rate + 1e-9) + 1
        n = job.total_items
        return min(n, max(0, ticks - job.concurrency)), min(n, ticks)

    def view(self, now: float) -> View:
        n = self.job.total_items
        if not self.job.running:
            return View(self, n, n, n, prefix_cancelled=self.cancelled_at is not None)
        done, started = self.progress(now)
        if self.cancelled_at is None:
            return View(self, n, done, started)
        # Items in flight at cancel time still finish; the rest never start.
        started = min(started, self.progress(self.cancelled_at)[1])
        return View(self, n, min(done, started), started, tail=CANCELLED)

    def finished_at(self) -> float:
        """When the last item completes (finished jobs spread completions by up to
        ``JITTER_MS`` after their schedule)."""
        job = self.job
        end = self.start + (max(job.total_items, 1) - 1 + job.concurrency) / job.rate
        return end if job.running else end + JITTER_MS / 1000


@dataclass(frozen=True, slots=True)
class View:
    """A job at one instant: ``[0, done)`` shows the mix, ``[done, started)`` is
    processing, ``[started, total)`` is pending, or cancelled after a cancel."""

    state: JobState
    total: int
    done: int
    started: int
    tail: int = PENDING
    #: A cancelled job that was not running: its pending items show as cancelled.
    prefix_cancelled: bool = False

    @property
    def key(self) -> tuple[int, int, int, bool, float | None]:
        return (self.done, self.started, self.tail, self.prefix_cancelled, self.state.cancelled_at)

    def _prefix_mask(self, code: int) -> int:
        if self.prefix_cancelled:
            if code == PENDING:
                return 0
            if code == CANCELLED:
                return 1 << CANCELLED | 1 << PENDING
        return 1 << code

    def display(self, raw: int) -> int:
        return CANCELLED if self.prefix_cancelled and raw == PENDING else raw

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.total
        code = CODE[status]
        n = self.state.layout.count_before(self._prefix_mask(code), self.done)
        if code == PROCESSING:
            n += self.started - self.done
        if code == self.tail:
            n += self.total - self.started
        return n

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in STATUSES}

    def status_of(self, index: int) -> int:
        if index >= self.started:
            return self.tail
        if index >= self.done:
            return PROCESSING
        layout = self.state.layout
        b, p = divmod(index, layout.block)
        return self.display(layout.codes(b)[p])

    def page(self, status: str | None, offset: int, limit: int) -> list[tuple[int, int]]:
        """``(index, status code)`` of one page, in index order."""
        if status is None:
            return self._unfiltered(offset, limit)
        code = CODE[status]
        out: list[tuple[int, int]] = []
        in_prefix = self.state.layout.count_before(self._prefix_mask(code), self.done)
        if offset < in_prefix:
            picked = self.state.layout.select(
                self._prefix_mask(code), offset, limit, below=self.done
            )
            out.extend((i, code) for i in picked)
        offset = max(0, offset - in_prefix)
        for lo, hi, run_code in (
            (self.done, self.started, PROCESSING),
            (self.started, self.total, self.tail),
        ):
            if run_code != code or len(out) >= limit:
                continue
            first = lo + offset
            last = min(hi, first + limit - len(out))
            out.extend((i, code) for i in range(first, last))
            offset = max(0, offset - (hi - lo))
        return out

    def _unfiltered(self, offset: int, limit: int) -> list[tuple[int, int]]:
        end = min(self.total, offset + limit)
        out: list[tuple[int, int]] = []
        i = offset
        layout = self.state.layout
        block = layout.block
        display = self.display
        while i < min(end, self.done):
            b, p = divmod(i, block)
            stop = min(end, self.done, (b + 1) * block)
            codes = layout.codes(b)[p : p + stop - i]
            if self.prefix_cancelled:
                out.extend((i + k, display(c)) for k, c in enumerate(codes))
            else:
                out.extend(zip(range(i, stop), codes, strict=True))
            i = stop
        out.extend((j, PROCESSING) for j in range(i, min(end, self.started)))
        out.extend((j, self.tail) for j in range(max(i, self.started), end))
        return out

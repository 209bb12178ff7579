"""What the simulator saw: counts, concurrency and a per-request log."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["RequestRecord", "Stats"]


@dataclass(slots=True)
class RequestRecord:
    """One request.  Times are ``time.monotonic()`` seconds; ``status`` is None
    when no status line was sent (a reset before the response)."""

    method: str
    path: str
    query: dict[str, str]
    start: float
    end: float | None = None
    status: int | None = None
    fault: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(slots=True)
class Stats:
    """Live counters of one simulator (``sim.stats``); ``sim.reset_stats()`` starts over.

    ``log`` keeps the most recent ``log_limit`` requests, so a long-running
    standalone server does not grow without bound.
    """

    log_limit: int = 100_000
    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    log: deque[RequestRecord] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.log = deque(self.log, maxlen=self.log_limit)

    def begin(self, method: str, path: str, query: dict[str, str]) -> RequestRecord:
        self.requests += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        record = RequestRecord(method, path, query, start=time.monotonic())
        self.log.append(record)
        return record

    def end(self, record: RequestRecord) -> None:
        self.in_flight -= 1
        record.end = time.monotonic()

    def faults(self) -> list[str]:
        """The fault applied to each logged request that had one, in order."""
        return [r.fault for r in self.log if r.fault is not None]

    def by_status(self) -> dict[int | None, int]:
        out: dict[int | None, int] = {}
        for r in self.log:
            out[r.status] = out.get(r.status, 0) + 1
        return out

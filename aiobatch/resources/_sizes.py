"""What this client has learnt about the length of job item listings.

A scan that knows roughly how long its listing is can send its whole first wave
at once instead of waiting one round trip for the first page's ``total_size``
(on a 7-round scan that round trip is an eighth of the time).  The job's own
counts say it: ``total_items`` (and ``failed_items`` / ``skipped_items`` for a
status-filtered scan) arrive with every job status this client reads, from
``jobs.get``, ``jobs.wait`` / ``watch``, ``jobs.list`` or the status call an
``"auto"`` status-filtered scan makes anyway.  They are hints, never verdicts:
the planner still proves the end of every scan, and a wrong hint costs at most
one wave of requests.
"""

from __future__ import annotations

from collections import OrderedDict

from ..models import BatchJob

__all__ = ["KnownSizes"]


class KnownSizes:
    """A small LRU of listing lengths: ``(job_id, status or None) -> count``."""

    __slots__ = ("_capacity", "_sizes")

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._sizes: OrderedDict[tuple[str, str | None], int] = OrderedDict()

    def job(self, job: BatchJob) -> None:
        """Remember a job's counts (the listing of all its items, of failed, of skipped)."""
        for status, count in (
            (None, job.total_items),
            ("failed", job.failed_items),
            ("skipped", job.skipped_items),
        ):
            self._remember((job.id, status), count)

    def items(self, job_id: str, status: str | None = None) -> int | None:
        """The expected length of a job's item listing (of one status), if known."""
        key = (job_id, status)
        size = self._sizes.get(key)
        if size is not None:
            self._sizes.move_to_end(key)
        return size

    def _remember(self, key: tuple[str, str | None], count: int | None) -> None:
        if count is None or isinstance(count, bool) or count < 0:
            return
        self._sizes[key] = count
        self._sizes.move_to_end(key)
        while len(self._sizes) > self._capacity:
            self._sizes.popitem(last=False)

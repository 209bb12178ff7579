"""Counts per status, the most common errors and skip reasons of a job's items."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ..models import BatchItem, ItemStatus
from ._output import print_table, terminal_safe

__all__ = ["DemoRun", "Summary"]

_ORDER = [s.value for s in ItemStatus]


def _pct(n: int, of: int) -> float:
    return round(100.0 * n / of, 2) if of else 0.0


def _clip(text: str, width: int = 90) -> str:
    text = " ".join(terminal_safe(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class Summary:
    job_id: str
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def add(self, items: Sequence[BatchItem]) -> None:
        self.total += len(items)
        self.statuses.update([item.status.value for item in items])
        errors = [item.error_message for item in items if item.error_message]
        if errors:
            self.errors.update(errors)
        skips = [item.skip_reason for item in items if item.skip_reason]
        if skips:
            self.skip_reasons.update(skips)

    def status_counts(self) -> list[tuple[str, int]]:
        known = [(s, self.statuses[s]) for s in _ORDER]
        extra = sorted((s, n) for s, n in self.statuses.items() if s not in _ORDER)
        return known + extra

    def to_json(self, top: int) -> dict[str, Any]:
        n_err = sum(self.errors.values())
        n_skip = sum(self.skip_reasons.values())
        return {
            "job_id": self.job_id,
            "total_items": self.total,
            "statuses": {
                s: {"count": n, "percent": _pct(n, self.total)} for s, n in self.status_counts()
            },
            "errors": [
                {"message": m, "count": n, "percent": _pct(n, n_err)}
                for m, n in self.errors.most_common(top)
            ],
            "distinct_errors": len(self.errors),
            "skip_reasons": [
                {"reason": r, "count": n, "percent": _pct(n, n_skip)}
                for r, n in self.skip_reasons.most_common(top)
            ],
        }

    def print_tables(self, out: IO[str], top: int) -> None:
        rows = [[s, f"{n:,}", f"{_pct(n, self.total):.1f}%"] for s, n in self.status_counts()]
        rows.append(["total", f"{self.total:,}", "100.0%" if self.total else "-"])
        print_table(
            out,
            ["status", "items", "share"],
            rows,
            title=f"Items of job {self.job_id}",
            right=(1, 2),
        )
        n_err = sum(self.errors.values())
        if self.errors:
            print_table(
                out,
                ["error message", "items", "share"],
                [
                    [_clip(m), f"{n:,}", f"{_pct(n, n_err):.1f}%"]
                    for m, n in self.errors.most_common(top)
                ],
                title=f"Top errors ({len(self.errors):,} distinct, {n_err:,} items)",
                right=(1, 2),
            )
        n_skip = sum(self.skip_reasons.values())
        if self.skip_reasons:
            print_table(
                out,
                ["skip reason", "items", "share"],
                [
                    [_clip(r), f"{n:,}", f"{_pct(n, n_skip):.1f}%"]
                    for r, n in self.skip_reasons.most_common(top)
                ],
                title=f"Skip reasons ({n_skip:,} items)",
                right=(1, 2),
            )
        out.flush()


@dataclass
class DemoRun:
    """What ``aiobatch demo`` reports: the summary, and the throughput achieved."""

    summary: Summary
    elapsed: float  #: seconds (> 0)
    requests: int
    peak_in_flight: int
    pages: int
    retries: int

    @property
    def rate(self) -> float:
        return self.summary.total / self.elapsed

    def to_json(self, top: int) -> dict[str, Any]:
        doc = self.summary.to_json(top)
        doc["elapsed_seconds"] = round(self.elapsed, 3)
        doc["items_per_second"] = round(self.rate)
        doc["requests"] = self.requests
        doc["peak_in_flight"] = self.peak_in_flight
        return doc

    def print_tables(self, out: IO[str], top: int) -> None:
        self.summary.print_tables(out, top)
        out.write(
            f"\n{self.summary.total:,} items in {self.elapsed:.2f}s: {self.rate:,.0f} items/s "
            f"({self.pages:,} pages, {self.requests:,} requests, up to {self.peak_in_flight} "
            f"in flight, {self.retries} retries)\n"
        )
        out.flush()

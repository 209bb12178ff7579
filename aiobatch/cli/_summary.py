"""Counts per status, the most common errors and skip reasons of a job's items."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ..models import BatchItem, ItemStatus
from ._output import dump_json, print_table, terminal_safe

__all__ = ["Summary"]

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

    def print_json(self, out: IO[str], top: int) -> None:
        out.write(dump_json(self.to_json(top)) + "\n")
        out.flush()

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

"""How v2 batches are drawn for people and flattened for CSV (the format
registry in ``_formats`` declares which format writes them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from ..models import Batch
from ._output import print_table

__all__ = ["BATCH_CSV_FIELDS", "batch_row", "draw_batch", "draw_batches"]

#: Columns of ``batches list --format csv`` (the job config flattened).
BATCH_CSV_FIELDS = (
    "id",
    "status",
    "job_type",
    "configuration_id",
    "source_directory_id",
    "project_id",
    "created_at",
    "updated_at",
)


def _ts(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def batch_row(batch: Batch) -> dict[str, Any]:
    """One CSV row: the wire fields, ``config.job`` flattened."""
    return {
        "id": batch.id,
        "status": str(batch.status),
        "job_type": str(batch.config.job.type),
        "configuration_id": batch.config.job.configuration_id,
        "source_directory_id": batch.source_directory_id,
        "project_id": batch.project_id,
        "created_at": batch.created_at.isoformat() if batch.created_at else "",
        "updated_at": batch.updated_at.isoformat() if batch.updated_at else "",
    }


def draw_batches(out: IO[str], batches: Sequence[Batch]) -> None:
    rows = [
        [
            b.id,
            str(b.status),
            str(b.config.job.type),
            b.config.job.configuration_id,
            b.source_directory_id,
            _ts(b.created_at),
        ]
        for b in batches
    ]
    cols = ["batch id", "status", "job type", "configuration", "source directory", "created"]
    print_table(out, cols, rows)


def draw_batch(out: IO[str], batches: Sequence[Batch]) -> None:
    for b in batches:
        rows = [
            ["batch", b.id],
            ["status", str(b.status)],
            ["job type", str(b.config.job.type)],
            ["configuration", b.config.job.configuration_id],
            ["source directory", b.source_directory_id],
            ["project", b.project_id],
            ["created", _ts(b.created_at)],
            ["updated", _ts(b.updated_at)],
        ]
        if b.results is not None:
            failed = sum(1 for r in b.results if r.job_reference is None)
            rows.append(["files", f"{len(b.results):,} ({failed:,} without a job)"])
        print_table(out, ["field", "value"], rows)
        if b.results:
            print_table(
                out,
                ["source file", "job type", "job id", "error"],
                [
                    [
                        r.source_directory_file_id,
                        r.job_reference.type if r.job_reference else "-",
                        r.job_reference.id if r.job_reference else "-",
                        r.error_message or "",
                    ]
                    for r in b.results
                ],
                title=f"Results of batch {b.id}",
            )

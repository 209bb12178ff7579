"""Where a simulated item's output lives: its parse job (status and results in
three kinds) or its classify job's results, and the hostile item names.

Every item that has a processing job (completed, failed, processing) carries a
``job_id`` that encodes the batch job's key and the item's index
(``{key}-xxxx-4xxx-axxx-00000{index:07d}``), so the parse and classify
endpoints find the item without storing anything.  Content is a pure function
of the processing job id: the same request always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ._data import ItemEncoder, _mix32, iso
from ._jobs import JobState, View
from ._layout import COMPLETED, FAILED, PROCESSING

__all__ = [
    "HOSTILE_NAMES",
    "PARSE_KINDS",
    "Outcome",
    "classify_body",
    "locate_job",
    "outcome",
    "parse_job_body",
    "parse_result_body",
    "result_content",
]

PARSE_KINDS = ("text", "markdown", "json")

#: Item names a real bucket can hold and a naive downloader would trust.
HOSTILE_NAMES: tuple[str, ...] = (
    "../../etc/passwd",
    "/etc/shadow",
    "C:\\Windows\\system32\\drivers\\etc\\hosts",
    "reports/2024/q3/summary.pdf",
    "reports\\2024\\q3\\summary.pdf",
    "nul\x00byte.pdf",
    "bell\x07and\x1b[31mred.pdf",
    "line\nbreak\r.pdf",
    "Report.PDF",
    "report.pdf",
    "REPORT.pdf",
    "same name.pdf",
    "same name.pdf",
    "..",
    ".",
    "",
    "   ",
    "x" * 300 + ".pdf",
    "été/報告書 第3.pdf",
    "\u202etxt.exe",
    "CON",
    "-rf",
    ".hidden",
)

#: One item in this many has a hostile name (when the job asks for them).
HOSTILE_EVERY = 3  # the item encoder inlines it

_PARAGRAPHS = (
    "The quarterly statement lists every invoice with its net amount, tax and due date.",
    "Die Rechnung enthält Positionen, Mengen und den Gesamtbetrag in Euro (€).",
    "Le contrat prévoit une résiliation anticipée avec un préavis de trente jours.",
    "報告書：第3四半期の売上は前年同期比で増加した。",
    "| item | qty | price |\n| --- | ---: | ---: |\n| widget | 4 | 12.50 |\n| gadget | 1 | 99.00 |",
    "Signed by both parties on the date written above; copies kept by each — § 4.2.",
    "Счёт № 42 оплачен полностью. Emoji check: 📄✅",
    "Totals are rounded to two decimals; see the appendix for the method used.",
)


def _corpus() -> str:
    rng = random.Random("aiobatch-sim/corpus")
    parts: list[str] = []
    size = 0
    n = 0
    while size < 65_536:
        n += 1
        if n % 9 == 1:
            parts.append(f"## Section {n // 9 + 1}\n")
        para = rng.choice(_PARAGRAPHS)
        parts.append(para + "\n")
        size += len(para) + 1
    return "\n".join(parts)


_CORPUS = _corpus()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one item's processing job."""

    #: ``PENDING | SUCCESS | ERROR`` (None: the job record is missing: 404).
    status: str | None
    #: Characters of the result content (SUCCESS only).
    size: int = 0
    error: str = ""


def _job_hash(job_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(), "big")


def locate_job(
    by_key: Mapping[str, JobState], encoders: Mapping[str, ItemEncoder], job_id: str
) -> tuple[JobState, int] | None:
    """The batch job and item index behind a processing job id, or None."""
    parts = job_id.split("-")
    if len(parts) != 5 or len(parts[4]) != 12 or not parts[4].startswith("00000"):
        return None
    tail = parts[4][5:]
    if not tail.isdigit():
        return None
    state = by_key.get(parts[0])
    if state is None:
        return None
    index = int(tail)
    if not 0 <= index < state.job.total_items:
        return None
    if encoders[state.job.job_id].job_id(index) != job_id:
        return None
    return state, index


def outcome(state: JobState, view: View, index: int, job_id: str) -> Outcome:
    """The processing job of item ``index`` as the server sees it now."""
    code = view.status_of(index)
    if code not in (COMPLETED, FAILED, PROCESSING):
        return Outcome(None)
    job = state.job
    h = _job_hash(job_id)
    if job.result_missing_every and h % job.result_missing_every == 0:
        return Outcome(None)
    if code == PROCESSING:
        return Outcome("PENDING")
    if code == FAILED:
        return Outcome("ERROR", error="the parse worker gave up on this file")
    if job.result_error_every and (h >> 8) % job.result_error_every == 0:
        return Outcome("ERROR", error="page 3: unreadable image (OCR failed)")
    if job.large_result_every and (h >> 16) % job.large_result_every == 0:
        return Outcome("SUCCESS", size=job.large_result_bytes)
    lo, hi = job.result_bytes
    # log-uniform between lo and hi: mostly small, a tail of large ones
    u = ((h >> 24) & 0xFFFFFF) / float(1 << 24)
    size = round(math.exp(math.log(max(lo, 1)) + u * (math.log(max(hi, 1)) - math.log(max(lo, 1)))))
    return Outcome("SUCCESS", size=max(lo, min(hi, size)))


def result_content(job_id: str, name: str, size: int) -> str:
    """``size`` characters of markdown, deterministic per processing job."""
    head = f"# {name}\n\nParsed by job `{job_id}`.\n\n"
    need = max(0, size - len(head))
    start = _job_hash(job_id) % len(_CORPUS)
    reps = (start + need) // len(_CORPUS) + 1
    body = (_CORPUS * (reps + 1))[start : start + need]
    return (head + body)[:size] if size >= len(head) else head[:size]


def _metadata(job_id: str, pages: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "job_pages": pages,
        "credits_used": pages * 3.0,
        "job_is_cache_hit": _job_hash(job_id) % 5 == 0,
    }


_PAGE_CHARS = 4000


def parse_result_body(job_id: str, name: str, kind: str, size: int) -> bytes:
    """``GET /parsing/job/{job_id}/result/{kind}`` of a successful job."""
    text = result_content(job_id, name, size)
    pages = max(1, -(-len(text) // _PAGE_CHARS))
    meta = _metadata(job_id, pages)
    if kind == "markdown":
        return msgspec.json.encode({"markdown": text, "job_metadata": meta})
    if kind == "text":
        return msgspec.json.encode({"text": text.replace("#", ""), "job_metadata": meta})
    chunks = [
        {"page": n + 1, "md": text[k : k + _PAGE_CHARS], "text": "", "status": "OK"}
        for n, k in enumerate(range(0, max(1, len(text)), _PAGE_CHARS))
    ]
    return msgspec.json.encode({"pages": chunks, "job_metadata": meta})


def parse_job_body(job_id: str, status: str) -> dict[str, Any]:
    return {"id": job_id, "status": status}


_TYPES = ("invoice", "contract", "receipt", "letter", "other")


def classify_body(state: JobState, index: int, job_id: str) -> dict[str, Any]:
    """``GET /classifier/jobs/{job_id}/results``, all in one answer: each classify
    job has one to three results (one per file of the item)."""
    h = _job_hash(job_id)
    n = 1 + h % 3
    created = iso(state.start + index / state.job.rate)
    items = []
    for k in range(n):
        kh = _mix32(h ^ k)
        items.append(
            {
                "id": f"clsr-{job_id}-{k}",
                "classify_job_id": job_id,
                "file_id": f"file-{state.key}-{index:07d}-{k}",
                "result": {
                    "type": _TYPES[kh % len(_TYPES)],
                    "confidence": round(0.5 + (kh >> 8) % 500 / 1000, 3),
                    "reasoning": "Line items, a total and a due date \u2014 typical of this type.",
                },
                "created_at": created,
                "updated_at": created,
            }
        )
    return {"items": items, "next_page_token": None, "total_size": n}

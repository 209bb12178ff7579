"""The deterministic generator: item JSON, job objects and processing results.

Item JSON is built as text from pieces escaped once by msgspec (names, error
messages) and integer-only arithmetic per item, because building a dict or
Struct per item would cost several times more than the JSON itself.  Output is
a pure function of (job, index, status, clock-derived view), so the same
request gives the same bytes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any

import msgspec

from ._jobs import JITTER_MS, JobState, View
from ._layout import CANCELLED, COMPLETED, FAILED, PENDING, PROCESSING, SKIPPED, STATUSES

__all__ = ["ItemEncoder", "iso", "job_object", "parse_item_id", "processing_results"]

_M64 = (1 << 64) - 1

_DIRS = (
    "contracts/2024/q3",
    "contracts/2023/q4",
    "invoices/2024/09",
    "invoices/2024/10",
    "hr/onboarding",
    "legal/ndas",
    "research/papers",
    "finance/statements/2024",
    "scans/batch_07",
    "marketing/decks",
    "Rechnungen/2024",
    "報告書/第3四半期",
    "shared drive/Q3 review",
)
_STEMS = ("scan", "invoice", "contract", "report", "statement", "IMG", "minutes", "Vertrag", "memo")
_EXTS = (".pdf",) * 8 + (".docx", ".xlsx", ".pptx", ".png", ".jpg", ".html", ".txt", ".eml")
_ERRORS = (
    "Échec de l'analyse: page 3 illisible — 文字化け",
    "Parse timed out after 900s",
    "File is password protected",
    "Unsupported file type: application/x-msdownload",
    'Invalid PDF structure: "xref" table not found',
    "Upstream error: 503 Service Unavailable from OCR worker",
)
_SKIPS = ("already_processed", "size_limit_exceeded", "unsupported_file_type")
#: The nullable fields an item of each status does not carry, as explicit nulls
#: (a FastAPI server sends ``null`` for an unset nullable field).
_NULLS = {
    "pending": (
        "completed_at",
        "error_message",
        "job_id",
        "job_record_id",
        "skip_reason",
        "started_at",
    ),
    "skipped": ("error_message", "job_id", "job_record_id", "started_at"),
    "cancelled": (
        "completed_at",
        "error_message",
        "job_id",
        "job_record_id",
        "skip_reason",
        "started_at",
    ),
    "processing": ("completed_at", "error_message", "skip_reason"),
    "completed": ("error_message", "skip_reason"),
    "failed": ("skip_reason",),
}
_NULL_TAILS = {st: "".join(f',"{f}":null' for f in fields) for st, fields in _NULLS.items()}
_EXTRA_ITEM = ',"x_sim_attempts":1,"x_sim_meta":{"shard":3,"tags":["sim"],"score":0.5}'


def _frag(text: str) -> str:
    """``text`` escaped for the inside of a JSON string literal."""
    return msgspec.json.encode(text).decode()[1:-1]


def _mix64(x: int) -> int:
    # splitmix64 finaliser: cheap, well spread, identical on every platform.
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _mix32(x: int) -> int:
    # The per-item hash (inlined in ItemEncoder.encode): small ints are fast ints.
    x = (x * 0x9E3779B1) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x85EBCA77) & 0xFFFFFFFF
    return x ^ (x >> 13)


_FRAC = tuple(f".{ms:03d}Z" for ms in range(1000))


def iso(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``."""
    ms = round(seconds * 1000)
    sec, frac = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:03d}Z"


class _Seconds(dict[int, str]):
    """``YYYY-MM-DDTHH:MM:SS`` per epoch second, computed on first use; neighbouring
    items share seconds, so hits dominate."""

    def __missing__(self, sec: int) -> str:
        if len(self) >= 16384:
            self.clear()
        head = self[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return head


def parse_item_id(item_id: str) -> tuple[str, int] | None:
    """``(job key, index)`` of an id made by ``ItemEncoder``, or None."""
    parts = item_id.split("_")
    if len(parts) != 3 or parts[0] != "itm" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


class ItemEncoder:
    """Writes the items of one job as JSON text."""

    def __init__(self, state: JobState) -> None:
        job = state.job
        self.state = state
        self.key = state.key
        self._salt = _mix32(job.seed ^ int(state.key, 16)) & 0x7FFFFFFF
        rng = random.Random(f"aiobatch-sim/names/{job.seed}")
        self._names = [
            (f"{_frag(rng.choice(_DIRS))}/{_frag(rng.choice(_STEMS))}_", rng.choice(_EXTS))
            for _ in range(1024)
        ]
        # The middle of the underlying parse job's UUID-looking id.
        self._mids = [
            f"{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-a{rng.getrandbits(12):03x}-"
            for _ in range(1024)
        ]
        self._errors = [msgspec.json.encode(e).decode() for e in _ERRORS]
        self._start_ms = round(state.start * 1000)
        self._created_ms = round(state.created_at * 1000)
        self._per_ms = 1000.0 / job.rate
        self._window_ms = round(job.concurrency * 1000 / job.rate)
        self._jitter = JITTER_MS if not job.running else 0  # a live job's schedule stays exact
        self._seconds = _Seconds()
        self._hostile: list[str] | None = None
        # Items described one by one: their names, errors and job ids as JSON
        # pieces (None where the generated one stands).
        self._names_of: list[str | None] | None = None
        self._errors_of: list[str | None] | None = None
        self._jobs_of: list[str | None] | None = None
        if state.explicit is not None:
            items = state.explicit
            self._names_of = [None if i.name is None else _frag(i.name) for i in items]
            self._errors_of = [
                None if i.error is None else msgspec.json.encode(i.error).decode() for i in items
            ]
            self._jobs_of = [None if i.job_id is None else _frag(i.job_id) for i in items]
        if job.hostile_names:
            from ._results import HOSTILE_NAMES

            self._hostile = [msgspec.json.encode(n).decode() for n in HOSTILE_NAMES]

    def _hostile_json(self, i: int) -> str | None:
        """Item ``i``'s hostile name as a JSON string literal, or None."""
        hostile = self._hostile
        if hostile is None or i % 3:
            return None
        return hostile[(i // 3) % len(hostile)]

    def job_id(self, i: int) -> str:
        """The id of item ``i``'s processing job (as items carry it)."""
        explicit = self.state.explicit
        if explicit is not None and explicit[i].job_id is not None:
            return str(explicit[i].job_id)
        h = self._hash(i)
        return f"{self.key}-{self._mids[h >> 10 & 1023]}00000{i:07d}"

    def _hash(self, i: int) -> int:
        return _mix32(i ^ self._salt)

    def finished_ms(self, i: int) -> int:
        """When item ``i`` completes (or completed), in epoch milliseconds."""
        return (
            self._start_ms
            + int(i * self._per_ms)
            + self._window_ms
            + ((self._hash(i) >> 4) & self._jitter)
        )

    def _iso_ms(self, ms: int) -> str:
        sec, frac = divmod(ms, 1000)
        return self._seconds[sec] + _FRAC[frac]

    def name_fragment(self, i: int) -> str:
        """Item ``i``'s name, escaped for the inside of a JSON string."""
        sources = self.state.sources
        if sources is not None:
            return sources[i][1]
        named = self._names_of[i] if self._names_of is not None else None
        if named is not None:
            return named
        hostile = self._hostile_json(i)
        if hostile is not None:
            return hostile[1:-1]  # the literal without its quotes
        head, ext = self._names[self._hash(i) & 1023]
        return f"{head}{i:07d}{ext}"

    def name(self, i: int) -> str:
        return str(msgspec.json.decode(f'"{self.name_fragment(i)}"'))

    def encode(
        self,
        entries: Iterable[tuple[int, int]],
        view: View,
        *,
        unknown_every: int = 0,
        unknown_value: str = "",
        extra: bool = False,
        nulls: bool = False,
    ) -> str:
        """The items ``(index, status code)`` as comma-separated JSON objects
        (``nulls``: unset nullable fields as explicit ``null``)."""
        seconds, frac_of = self._seconds, _FRAC
        salt, names, mids, errors = self._salt, self._names, self._mids, self._errors
        start0, per, window, jitter = self._start_ms, self._per_ms, self._window_ms, self._jitter
        key = self.key
        created = self._iso_ms(self._created_ms)
        cancelled_at = view.state.cancelled_at
        cancelled = self._iso_ms(round(cancelled_at * 1000)) if cancelled_at is not None else ""
        tail = _EXTRA_ITEM if extra else ""
        tails = tuple((_NULL_TAILS[st] if nulls else "") + tail for st in STATUSES)
        unknown_value = _frag(unknown_value)
        layout = view.state.layout
        block = layout.block
        hostile = self._hostile
        sources = view.state.sources  # a job made of other jobs' items keeps their ids
        names_of, errors_of, jobs_of = self._names_of, self._errors_of, self._jobs_of
        out: list[str] = []
        append = out.append
        for i, code in entries:
            # _mix32, inlined: this loop is the simulator's hot path.
            h = ((i ^ salt) * 0x9E3779B1) & 0xFFFFFFFF
            h ^= h >> 15
            h = (h * 0x85EBCA77) & 0xFFFFFFFF
            h ^= h >> 13
            head, ext = names[h & 1023]
            num = f"{i:07d}"
            st = STATUSES[code]
            if unknown_every and i % unknown_every == 0:
                st = unknown_value
            if sources is not None:
                sid, sname = sources[i]
                lead = f'{{"item_id":"{sid}","item_name":"{sname}","status":"{st}"'
            elif names_of is not None and names_of[i] is not None:
                lead = f'{{"item_id":"itm_{key}_{num}","item_name":"{names_of[i]}","status":"{st}"'
            elif hostile is not None and not i % 3:
                name = hostile[(i // 3) % len(hostile)]
                lead = f'{{"item_id":"itm_{key}_{num}","item_name":{name},"status":"{st}"'
            else:
                lead = (
                    f'{{"item_id":"itm_{key}_{num}","item_name":"{head}{num}{ext}","status":"{st}"'
                )
            if code == PENDING:
                append(f'{lead},"effective_at":"{created}"{tails[code]}}}')
                continue
            sec, frac = divmod(start0 + int(i * per), 1000)
            started = seconds[sec] + frac_of[frac]
            if code == SKIPPED:
                append(
                    f'{lead},"completed_at":"{started}","effective_at":"{started}",'
                    f'"skip_reason":"{_SKIPS[(h >> 10) % 3]}"{tails[code]}}}'
                )
                continue
            if code == CANCELLED:
                # After a cancel, items that never started carry the cancel time.
                late = i >= view.started or (
                    view.prefix_cancelled and layout.codes(i // block)[i % block] == PENDING
                )
                append(f'{lead},"effective_at":"{cancelled if late else started}"{tails[code]}}}')
                continue
            # Decimal digits are valid hex: the id stays UUID-shaped without hex formatting.
            job_id = f"{key}-{mids[h >> 10 & 1023]}00000{num}"
            if jobs_of is not None and jobs_of[i] is not None:
                job_id = str(jobs_of[i])
            job_ref = f'"job_id":"{job_id}","job_record_id":"rec_{key}{num}"'

            if code == PROCESSING:
                append(
                    f'{lead},"effective_at":"{started}",{job_ref},"started_at":"{started}"{tails[code]}}}'
                )
                continue
            sec, frac = divmod(start0 + int(i * per) + window + ((h >> 4) & jitter), 1000)
            ended = seconds[sec] + frac_of[frac]
            error = ""
            if code == FAILED:
                # Half the failures carry the non-ASCII message: pages exercise UTF-8.
                message = errors[(h >> 20) % 6 if h & 0x100000 else 0]
                if errors_of is not None and errors_of[i] is not None:
                    message = str(errors_of[i])
                error = f',"error_message":{message}'
            append(
                f'{lead},"completed_at":"{ended}","effective_at":"{ended}"{error},'
                f'{job_ref},"started_at":"{started}"{tails[code]}}}'
            )
        return ",".join(out)


def job_object(state: JobState, view: View, now: float) -> dict[str, Any]:
    """The Job object of the API for ``state`` as seen at ``now``."""
    job = state.job
    counts = view.counts()
    in_flight = counts["pending"] + counts["processing"]
    if state.cancelled_at is not None:
        status = "cancelled"
    elif job.running and now < state.start:
        status = "pending"
    else:
        status = "running" if in_flight else "completed"
    status = job.status or status
    out: dict[str, Any] = {
        "id": job.job_id,
        "job_type": job.job_type,
        "project_id": job.project_id,
        "status": status,
        "total_items": job.total_items,
        "created_at": iso(state.created_at),
        "directory_id": job.directory_id,
        "failed_items": counts["failed"],
        "job_record_id": f"rec_{state.key}_job",
        "processed_items": counts["completed"] + counts["failed"] + counts["skipped"],
        "skipped_items": counts["skipped"],
        "workflow_id": f"batch-{job.job_type}-{state.key}",
        # Nullable in the API: present as null until they apply.
        "started_at": None if status == "pending" else iso(state.start),
        "completed_at": None,
        "error_message": job.error_message,
    }
    if status in ("completed", "failed", "cancelled"):
        ended = state.cancelled_at if state.cancelled_at is not None else state.finished_at()
        out["completed_at"] = out["updated_at"] = out["effective_at"] = iso(ended)
    elif job.running:
        out["updated_at"] = out["effective_at"] = iso(max(state.created_at, now))
    else:  # a frozen snapshot: its last change is its last scheduled event, not "now"
        out["updated_at"] = out["effective_at"] = iso(state.finished_at())
    return out


def progress_percentage(view: View) -> float:
    if not view.total:
        return 100.0
    open_items = view.count("pending") + view.count("processing")
    return round(100.0 * (view.total - open_items) / view.total, 2)


def _job_config(state: JobState, item_id: str) -> dict[str, Any]:
    job = state.job
    if job.job_config is not None:
        return dict(job.job_config)
    user = "user_2dLq9xS3kP0aYw7vBfM1cT8e"
    if job.job_type == "classify":
        return {
            "id": f"cls-{state.key}",
            "project_id": job.project_id,
            "user_id": user,
            "status": "SUCCESS",
            "mode": "FAST",
            "rules": [
                {"type": "invoice", "description": "Bills with line items, totals and a due date"},
                {"type": "contract", "description": "Agreements with parties and signatures"},
            ],
            "parsing_configuration": {"lang": "en", "max_pages": 5},
            "created_at": iso(state.created_at),
        }
    return {
        "job_name": "parse_raw_file_job",
        "project_id": job.project_id,
        "user_id": user,
        "session_id": f"sess-{state.key}",
        "correlation_id": f"corr-{state.key}-{item_id}",
        "parent_job_execution_id": job.job_id,
        "partitions": {"job_id": job.job_id, "item_id": item_id},
        "parameters": {
            "type": "parse",
            "parse_mode": "parse_page_with_agent",
            "tier": "agentic",
            "version": "latest",
            "lang": "en",
            "languages": ["en", "fr", "de"],
            "max_pages": 200,
            "high_res_ocr": True,
            "adaptive_long_table": True,
            "outlined_table_extraction": True,
            "output_tables_as_HTML": True,
            "outputBucket": "llamacloud-parse-output",
            "priority": "medium",
            "custom_metadata": {"batch": job.job_id, "source": "aiobatch-sim"},
            "webhook_configurations": [
                {
                    "webhook_url": "https://hooks.example.com/llamacloud",
                    "webhook_events": ["parse.success", "parse.error"],
                    "webhook_output_format": "json",
                }
            ],
        },
    }


def processing_results(
    state: JobState, encoder: ItemEncoder, index: int, view: View, job_type: str | None
) -> dict[str, Any]:
    """The processing-results object of one item: one result once it completed
    (with the ``job_config`` it was processed with)."""
    item_id = f"itm_{state.key}_{index:07d}"
    out: dict[str, Any] = {"item_id": item_id, "item_name": encoder.name(index)}
    job = state.job
    if view.status_of(index) != COMPLETED or job_type not in (None, job.job_type):
        out["processing_results"] = []
        return out
    h = encoder._hash(index)
    out["processing_results"] = [
        {
            "item_id": item_id,
            "job_config": _job_config(state, item_id),
            "job_type": job.job_type,
            "output_s3_path": (
                f"s3://llamacloud-batch-output/{job.project_id}/{job.job_id}/{item_id}/result.json"
            ),
            "parameters_hash": f"{_mix64(job.seed):016x}{_mix64(job.seed + 1):016x}",
            "processed_at": iso(encoder.finished_ms(index) / 1000),
            "result_id": f"res_{state.key}_{h & 0xFFFFFFFF:08x}_{index:07d}",
            "output_metadata": {},
        }
    ]
    return out

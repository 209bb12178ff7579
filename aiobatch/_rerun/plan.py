"""The plan of a re-run (``RetryPlan``, ``RetryChunk``) and its JSON form.

Pure data: no I/O.  The JSON form is what a state store keeps between runs, so
``RetryPlan.from_json(plan.to_json()) == plan`` for every plan, live or not.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["RetryChunk", "RetryPlan", "chunk_key", "plan_chunks", "with_job"]

#: The version of ``RetryPlan.to_json``'s form (files without one are version 1).
FORMAT = 2


def chunk_key(item_ids: Sequence[str]) -> str:
    """A chunk's fingerprint: the same items give the same key, in any run."""
    digest = hashlib.blake2b(digest_size=12)
    for item_id in item_ids:
        digest.update(item_id.encode("utf-8", "surrogatepass"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class RetryChunk:
    """Items re-run together as one new job (``job_id`` once created).

    ``attempted_at`` (wall clock, epoch seconds) is when its create was last
    sent: recorded *before* the request leaves, so a run interrupted mid-create
    still knows that the job may exist.  ``candidates`` names the jobs a later
    run could not tell apart from this chunk's job (look at them).  ``found``:
    its job was found by looking (a create whose answer was lost had made it).
    """

    index: int
    item_ids: tuple[str, ...]
    key: str
    job_id: str | None = None
    attempted_at: float | None = None
    candidates: tuple[str, ...] = ()
    found: bool = False

    @property
    def size(self) -> int:
        return len(self.item_ids)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "key": self.key,
            "job_id": self.job_id,
            "item_ids": list(self.item_ids),
        }
        if self.attempted_at is not None:
            data["attempted_at"] = self.attempted_at
        if self.candidates:
            data["candidates"] = list(self.candidates)
        if self.found:
            data["found"] = True
        return data

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
        at = data.get("attempted_at")
        if at is not None and (
            isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at)
        ):
            raise ValueError(f"retry chunk {index}: attempted_at must be a number of seconds")
        candidates = data.get("candidates", [])
        if not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates):
            raise ValueError(f"retry chunk {index}: candidates must be a list of job ids")
        found = data.get("found", False)
        if not isinstance(found, bool) or (found and job_id is None):
            raise ValueError(f"retry chunk {index}: found must be true (with a job_id) or false")
        chunk = cls(
            index,
            tuple(ids),
            chunk_key(ids),
            job_id,
            None if at is None else float(at),
            tuple(candidates),
            found,
        )
        if data.get("key") not in (None, chunk.key):
            raise ValueError(f"retry chunk {index}: its key does not match its item ids (edited?)")
        return chunk


@dataclass(slots=True)
class RetryPlan:
    """What ``client.jobs.retry_failed`` did, or would do (``dry_run``).

    The chunk plan is deterministic: the items to re-run, sorted by id, cut into
    ``chunk_size`` pieces; a chunk's ``key`` fingerprints its items.  Chunks with
    a ``job_id`` were created (in this run or, ``earlier``, in a run before);
    the rest were not.  Passing this plan back as ``already_created=`` (or
    keeping it in ``state=``) re-runs only the items no created chunk holds, so
    a rerun never submits an item twice.  ``uncertain`` chunks are those whose
    create may have made a job without the client hearing of it (interrupted,
    timed out, a 5xx, a lost connection): the next run looks for their job
    before it submits them again (``client.jobs.retry_failed``);
    ``not_submitted`` lists their items with the other leftovers.
    """

    source_job_id: str
    statuses: tuple[str, ...]
    chunk_size: int
    dry_run: bool = False
    #: Chunks of this run, in order (``job_id`` set once created).
    chunks: list[RetryChunk] = field(default_factory=list)
    #: Chunks created by earlier runs (from ``already_created`` / ``state``).
    earlier: list[RetryChunk] = field(default_factory=list)
    #: Chunks whose create may or may not have made a job.
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
        """Every field, JSON-able (a state store keeps it); ``from_json`` reads it
        back equal.  ``created`` repeats the created chunks for readers of the
        file; it is not read back."""
        return {
            "format": FORMAT,
            "source_job_id": self.source_job_id,
            "statuses": list(self.statuses),
            "chunk_size": self.chunk_size,
            "dry_run": self.dry_run,
            "found": self.found,
            "config_source": self.config_source,
            "chunks": [c.to_json() for c in self.chunks],
            "earlier": [c.to_json() for c in self.earlier],
            "uncertain": [c.to_json() for c in self.uncertain],
            "created": [c.to_json() for c in self.created],
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
        found, dry_run, source = data.get("found", 0), data.get("dry_run", False), None
        if isinstance(found, bool) or not isinstance(found, int) or found < 0:
            raise ValueError("a retry plan's found must be an integer >= 0")
        if not isinstance(dry_run, bool):
            raise ValueError("a retry plan's dry_run must be true or false")
        source = data.get("config_source")
        if source is not None and not isinstance(source, str):
            raise ValueError("a retry plan's config_source must be a string or null")
        # Version 1 kept only the created chunks, under "created".
        earlier = _chunks(data, "earlier" if "format" in data else "created")
        if any(c.job_id is None for c in earlier):
            raise ValueError("a created retry chunk must have a job_id")
        return cls(
            data["source_job_id"],
            tuple(statuses),
            size,
            dry_run,
            chunks=_chunks(data, "chunks"),
            earlier=earlier,
            uncertain=_chunks(data, "uncertain"),
            found=found,
            config_source=source,
        )


def _chunks(data: dict[str, Any], name: str) -> list[RetryChunk]:
    raw = data.get(name, [])
    if not isinstance(raw, list):
        raise ValueError(f"a retry plan's {name} must be a list of chunks")
    return [RetryChunk.from_json(c) for c in raw]


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


def with_job(chunk: RetryChunk, job_id: str, *, found: bool = False) -> RetryChunk:
    return replace(chunk, job_id=job_id, candidates=(), found=found)

"""The simulated world: every job, looked up by id or by item id, and the
encoded-page cache.  No HTTP here; the handlers and the ground-truth helpers
both read through this, so what tests assert is what the server sends."""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..models import BatchItem
from ._data import ItemEncoder, parse_item_id
from ._jobs import JobState, SimClock, SimJob, View

__all__ = ["CreateRecord", "Registry", "config_type"]

_item_list = msgspec.json.Decoder(list[BatchItem])
PageKey = tuple[Any, ...]


class _PageCache:
    """LRU of encoded item arrays, bounded by bytes rather than entries."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._pages: OrderedDict[PageKey, tuple[bytes, int]] = OrderedDict()

    def get(self, key: PageKey) -> tuple[bytes, int] | None:
        hit = self._pages.get(key)
        if hit is not None:
            self._pages.move_to_end(key)
        return hit

    def put(self, key: PageKey, value: tuple[bytes, int]) -> None:
        if len(value[0]) > self.max_bytes:
            return
        self._pages[key] = value
        self.size += len(value[0])
        while self.size > self.max_bytes:
            _, (old, _) = self._pages.popitem(last=False)
            self.size -= len(old)

    def clear(self) -> None:
        self._pages.clear()
        self.size = 0


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """One accepted ``POST /batch-processing``: what was asked, and the job made."""

    job_id: str
    job_config: dict[str, Any]
    item_ids: tuple[str, ...] | None
    directory_id: str | None
    project_id: str | None


def config_type(job_config: Mapping[str, Any]) -> str | None:
    """The job type a configuration asks for (``type`` / ``job_type``, else its
    ``parameters.type``, else ``classify`` when it has ``rules``); None: unsaid."""
    for value in (job_config.get("type"), job_config.get("job_type")):
        if value is not None:
            return str(value)
    params = job_config.get("parameters")
    if isinstance(params, Mapping) and params.get("type") is not None:
        return str(params["type"])
    return "classify" if "rules" in job_config else None


class Registry:
    def __init__(
        self,
        clock: SimClock,
        *,
        seed: int = 0,
        created_job_items: int = 25,
        page_cache_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.created_job_items = created_job_items
        self.cache = _PageCache(page_cache_bytes)
        self._states: dict[str, JobState] = {}
        self._by_key: dict[str, JobState] = {}
        self._encoders: dict[str, ItemEncoder] = {}
        #: Processing job ids given by ``SimItem.job_id``: (job, item index).
        self._explicit_jobs: dict[str, tuple[JobState, int]] = {}
        self._created = 0
        #: Every accepted create, in order (``sim.creates``).
        self.creates: list[CreateRecord] = []

    # --- jobs ---------------------------------------------------------------

    def add(self, job: SimJob, state: JobState | None = None) -> JobState:
        if job.job_id in self._states:
            raise ValueError(f"duplicate job_id {job.job_id!r}")
        state = state or JobState(job, now=self.clock.now())
        if state.key in self._by_key:
            other = self._by_key[state.key].job.job_id
            raise ValueError(f"job ids {job.job_id!r} and {other!r} share an item-id key")
        self._states[job.job_id] = state
        self._by_key[state.key] = state
        self._encoders[job.job_id] = ItemEncoder(state)
        for index, item in enumerate(state.explicit or ()):
            if item.job_id is not None:
                if item.job_id in self._explicit_jobs:
                    raise ValueError(f"two items share the processing job {item.job_id!r}")
                self._explicit_jobs[item.job_id] = (state, index)
        return state

    def get(self, job_id: str) -> JobState | None:
        return self._states.get(job_id)

    def require(self, job_id: str) -> JobState:
        state = self._states.get(job_id)
        if state is None:
            raise KeyError(f"no simulated job {job_id!r}")
        return state

    def states(self) -> list[JobState]:
        return list(self._states.values())

    def encoder(self, state: JobState) -> ItemEncoder:
        return self._encoders[state.job.job_id]

    def locate_item(self, item_id: str) -> tuple[JobState, int] | None:
        parsed = parse_item_id(item_id)
        if parsed is None:
            return None
        state = self._by_key.get(parsed[0])
        if state is None or not 0 <= parsed[1] < state.job.total_items:
            return None
        return state, parsed[1]

    def locate_job(self, job_id: str) -> tuple[JobState, int] | None:
        """The batch job and item index behind an item's processing ``job_id``."""
        from ._results import locate_job

        return self._explicit_jobs.get(job_id) or locate_job(self._by_key, self._encoders, job_id)

    def unknown_items(self, item_ids: Sequence[str]) -> list[tuple[int, str]]:
        """``(position, id)`` of each id that names no item (or repeats one)."""
        seen: set[str] = set()
        bad = []
        for k, item_id in enumerate(item_ids):
            if item_id in seen or self.locate_item(item_id) is None:
                bad.append((k, item_id))
            seen.add(item_id)
        return bad

    def create(
        self,
        job_config: Mapping[str, Any],
        *,
        directory_id: str | None,
        item_ids: Sequence[str] | None,
        project_id: str | None,
    ) -> JobState:
        """A job made by ``POST``: it starts a second later, then runs at a pace a
        demo can watch (5 items/s).  With ``item_ids`` (all known: the handler
        checks), its items are exactly those items (same ids and names), pending
        until they run."""
        sources: list[tuple[str, str]] | None = None
        if item_ids is not None:
            sources = []
            for item_id in item_ids:
                found = self.locate_item(item_id)
                if found is None:
                    raise KeyError(item_id)
                source, index = found
                sources.append((item_id, self.encoder(source).name_fragment(index)))
        self._created += 1
        digest = hashlib.blake2b(f"{self.seed}/{self._created}".encode(), digest_size=16)
        h = digest.hexdigest()
        job_type = config_type(job_config) or "parse"
        if job_type not in ("parse", "extract", "classify"):
            job_type = "parse"
        extra: dict[str, Any] = {"project_id": project_id} if project_id else {}
        job = SimJob(
            job_id=f"bjb-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
            total_items=len(item_ids) if item_ids is not None else self.created_job_items,
            seed=self.seed + self._created,
            job_type=job_type,
            running=True,
            rate=5.0,
            concurrency=4,
            created_at=self.clock.now(),
            start_delay=1.0,
            directory_id=directory_id,
            job_config=dict(job_config),
            **extra,
        )
        state = JobState(job, now=self.clock.now())
        state.sources = sources
        added = self.add(job, state)
        self.creates.append(
            CreateRecord(
                job.job_id,
                dict(job_config),
                tuple(item_ids) if item_ids is not None else None,
                directory_id,
                project_id,
            )
        )
        return added

    # --- items --------------------------------------------------------------

    def items_json(
        self,
        state: JobState,
        view: View,
        status: str | None,
        offset: int,
        limit: int,
        *,
        unknown_every: int = 0,
        unknown_value: str = "",
        extra: bool = False,
        nulls: bool = False,
        ties: tuple[int, str] | None = None,
    ) -> tuple[bytes, int]:
        """One page's items as a JSON array body (without brackets) and its length.

        ``ties`` is ``(group, salt)``: shuffle each aligned group of ``group``
        positions with a seed made of ``salt`` and the group number (uncached)."""
        if ties is not None:
            entries = _tied_page(view, status, offset, limit, *ties)
            text = self.encoder(state).encode(
                entries,
                view,
                unknown_every=unknown_every,
                unknown_value=unknown_value,
                extra=extra,
                nulls=nulls,
            )
            return text.encode(), len(entries)
        key = (
            state.job.job_id,
            view.key,
            status,
            offset,
            limit,
            unknown_every,
            unknown_value,
            extra,
            nulls,
        )
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        entries = view.page(status, offset, limit)
        text = self.encoder(state).encode(
            entries,
            view,
            unknown_every=unknown_every,
            unknown_value=unknown_value,
            extra=extra,
            nulls=nulls,
        )
        value = (text.encode(), len(entries))
        self.cache.put(key, value)
        return value

    def truth(
        self, job_id: str, status: str | None = None, offset: int = 0, limit: int | None = None
    ) -> Iterator[BatchItem]:
        """Items as the server would send them now (no faults), decoded."""
        state = self.require(job_id)
        view = state.view(self.clock.now())
        end = view.count(status) if limit is None else min(view.count(status), offset + limit)
        encoder = self.encoder(state)
        for start in range(offset, end, 1000):
            entries = view.page(status, start, min(1000, end - start))
            yield from _item_list.decode(f"[{encoder.encode(entries, view)}]")

    def cancel(self, state: JobState, reason: str | None) -> None:
        if state.cancelled_at is None:
            state.cancelled_at = self.clock.now()
            state.cancel_reason = reason


def _tied_page(
    view: View, status: str | None, offset: int, limit: int, group: int, salt: str
) -> list[tuple[int, int]]:
    """One page of the listing with each aligned group of ``group`` positions
    permuted; only the groups the page touches are built (O(limit + group))."""
    end = min(view.count(status), offset + limit)
    out: list[tuple[int, int]] = []
    g = offset // group
    while g * group < end:
        lo = g * group
        members = view.page(status, lo, group)  # the last group may be shorter
        order = list(range(len(members)))
        random.Random(f"{salt}/{g}").shuffle(order)
        out.extend(members[k] for k in order[max(offset, lo) - lo : end - lo])
        g += 1
    return out

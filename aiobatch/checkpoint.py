"""``Checkpoint``: what a pool of workers has finished, as a consumer group's
committed offset.

Workers finish items out of order, so "everything before ``next_offset``" is not
what is done.  A checkpoint remembers, for the scans it is passed to
(``checkpoint=``), which items were handed out and which were acknowledged
(``ack``); it keeps a watermark (an offset, or a page token for cursor listings)
before which everything is done, the acknowledged keys past it, and the last
128 keys behind it (a stale or clamped page at the resume point repeats them).
A scan started from a checkpoint begins at the watermark and hands out every
item not acknowledged, never one that was (by key: the item, batch or file id).
An offset watermark counts the scanned listing: once a page's items are all
acknowledged it passes the page's end, the items a client-side filter skipped
included (the CLI's export and download state is such a checkpoint).

``to_json()`` is small and bounded: the watermark moves as acks fill the gap,
and a scan waits (``max_pending``) rather than hand out more items than that
past the oldest one not acknowledged.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import anyio
import msgspec

from ._errors import DriftError
from ._paging.position import cut
from ._paging.types import FilterMode, Page
from ._results._types import FileResult, ItemResult
from .models import Batch, BatchItem

__all__ = ["Checkpoint"]

T = TypeVar("T")
Kind = Literal["offset", "cursor"]
_VERSION = 1
#: Keys just behind the watermark that are saved too: a stale or clamped page at
#: the resume point repeats them, and a resumed scan has no other memory of them.
_RECENT = 128


class _State(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    listing: str | None = None
    kind: Kind | None = None
    offset: int = 0
    token: str | None = None
    filter_mode: FilterMode | None = None
    acked: list[str] = []
    recent: list[str] = []
    #: The ``total_size`` of the last page handed out (offset listings).
    total: int | None = None


def key_of(done: object) -> str:
    """The stable key of what a scan hands out."""
    if isinstance(done, BatchItem):
        return done.item_id
    if isinstance(done, ItemResult):
        return done.item.item_id
    if isinstance(done, Batch):
        return done.id
    if isinstance(done, FileResult):
        return done.file_id
    raise TypeError(
        "ack() takes a BatchItem, an ItemResult, a Batch, a FileResult or a Page of them, "
        f"got {type(done).__name__}"
    )


@dataclass(slots=True)
class _Entry:
    key: str
    #: Where a scan must start to hand this item out again: its offset, or the
    #: token of its page (None: the first page).
    pos: int | str | None
    acked: bool = False
    #: Offset listings: where the page this entry ends stops (its items passed
    #: by, filtered out on the client, are done once this one is).
    end: int = 0


class Checkpoint:
    """The done-set of a scan shared by workers: ``ack`` what is finished,
    save ``to_json()`` (after every ack if you like), resume with
    ``Checkpoint.from_json(saved)`` passed as ``checkpoint=``.

    ``max_pending``: a scan that has handed out this many items past the
    oldest one not acknowledged waits for acks before it takes its next page
    (so at most ``max_pending`` plus a page are out: this bounds ``to_json()``).
    """

    def __init__(self, *, max_pending: int = 10_000) -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1, got {max_pending!r}")
        self.max_pending = max_pending
        self._listing: str | None = None
        self._kind: Kind | None = None
        self._filter_mode: FilterMode | None = None
        self._offset = 0
        self._token: str | None = None
        #: The total the consumer last saw: a resumed scan told a lower one knows
        #: the offsets shifted under the watermark (items would be skipped).
        self._total: int | None = None
        self._entries: collections.deque[_Entry] = collections.deque()
        self._handed: dict[str, _Entry] = {}
        #: Keys of the acknowledged entries (past the oldest one not acknowledged).
        self._ahead: set[str] = set()
        #: Acked keys no scan of this object has met yet (loaded, or acked late).
        self._kept: set[str] = set()
        #: Acked keys of the watermark's own page (cursor: handed out again).
        self._behind: list[str] = []
        #: Handed out by an earlier scan of this object and not acked then.
        self._stale: set[str] = set()
        #: Keys the watermark passed lately: a second ack of one is harmless.
        self._retired: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._generation = 0
        #: Set when acks make room (made by a waiting scan, in its own loop).
        self._room: anyio.Event | None = None

    @classmethod
    def from_json(cls, text: str | bytes, *, max_pending: int = 10_000) -> Checkpoint:
        """A checkpoint saved by ``to_json()``."""
        try:
            state = msgspec.json.decode(text, type=_State)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not a saved Checkpoint: {exc}") from None
        if state.version != _VERSION:
            raise ValueError(f"unknown Checkpoint version {state.version!r} (expected 1)")
        if state.offset < 0:
            raise ValueError(f"a Checkpoint's offset must be >= 0, got {state.offset}")
        if state.total is not None and state.total < 0:
            raise ValueError(f"a Checkpoint's total must be >= 0, got {state.total}")
        if not all((*state.acked, *state.recent)):
            raise ValueError("a Checkpoint's acked keys must be non-empty ids")
        cp = cls(max_pending=max_pending)
        cp._listing, cp._kind, cp._filter_mode = state.listing, state.kind, state.filter_mode
        cp._offset, cp._token, cp._total = state.offset, state.token, state.total
        cp._kept = set(state.acked)
        for key in state.recent[-_RECENT:]:
            cp._retire(key)
        return cp

    def to_json(self) -> str:
        """The watermark and the acknowledged keys past it, as compact JSON."""
        acked = self._kept | self._ahead | set(self._behind)
        state = _State(
            _VERSION,
            self._listing,
            self._kind,
            self._offset,
            self._token,
            self._filter_mode,
            sorted(acked),
            list(itertools.islice(reversed(self._retired), _RECENT))[::-1],
            self._total,
        )
        return msgspec.json.encode(state).decode()

    def ack(self, done: object) -> None:
        """Mark an item (or result, batch, file result, or every item of a
        ``Page``) as finished.  Acking twice is harmless; acking what no scan
        of this checkpoint handed out (lately) is a ``ValueError``."""
        if isinstance(done, Page):
            for item in done.items:
                self.ack(item)
            return
        key = key_of(done)
        entry = self._handed.get(key)
        if entry is not None:
            entry.acked = True
            if self._entries[0] is entry:
                self._compact()  # the oldest one: the watermark moves
            else:
                self._ahead.add(key)
        elif key in self._stale:
            self._stale.discard(key)
            self._kept.add(key)
        elif key not in self._kept and key not in self._behind and key not in self._retired:
            raise ValueError(f"{key[:80]!r} was not handed out by a scan using this checkpoint")

    @property
    def pending(self) -> int:
        """Items handed out past the watermark (acknowledged or not)."""
        return len(self._entries)

    @property
    def offset(self) -> int:
        """The watermark of an offset listing: every item before it is done."""
        return self._offset

    @property
    def filter_mode(self) -> FilterMode | None:
        """The filter mode the offsets are counted in (None: not known yet)."""
        return self._filter_mode

    def __repr__(self) -> str:
        where = f"token={self._token[:40]!r}" if self._kind == "cursor" and self._token else ""
        where = where or f"offset={self._offset}"
        return f"Checkpoint({where}, pending={len(self._entries)}, acked_past={len(self._kept)})"

    # --- what the scans use ------------------------------------------------------------

    def _resume(self, listing: str, kind: Kind) -> tuple[int, str | None, FilterMode | None]:
        """Where a scan of ``listing`` starts: offset, token and filter mode."""
        if self._listing is not None and self._listing != listing:
            raise ValueError(
                f"this checkpoint belongs to the scan of {self._listing!r}, "
                f"not of {listing!r}: use one checkpoint per listing"
            )
        if self._kind is not None and self._kind != kind:
            raise ValueError(f"this checkpoint holds a {self._kind} position, not a {kind} one")
        return self._offset, self._token, self._filter_mode

    def _tap(
        self,
        listing: str,
        kind: Kind,
        key: Callable[[T], str],
        *,
        start_token: str | None = None,
        whole: bool = True,
    ) -> _Tap[T]:
        """Begin a scan: what an earlier scan of this object handed out and was
        not acknowledged will be handed out again."""
        self._listing, self._kind = listing, kind
        for e in self._entries:
            (self._kept.add if e.acked else self._stale.add)(e.key)
        self._kept.update(self._behind)
        self._entries.clear()
        self._handed.clear()
        self._ahead.clear()
        self._behind = []
        self._generation += 1
        return _Tap(self, self._generation, key, start_token, whole)

    def _hand(self, key: str, pos: int | str | None) -> bool:
        """Record an item the scan reached; False if it is done already."""
        if key in self._kept or key in self._retired:
            self._kept.discard(key)
            self._entries.append(_Entry(key, pos, acked=True))
            self._ahead.add(key)
            self._compact()
            return False
        if key in self._handed:  # the scan's own duplicate check owns repeats
            return False
        self._stale.discard(key)
        entry = _Entry(key, pos)
        self._entries.append(entry)
        self._handed[key] = entry
        return True

    def _all_new(self, keys: list[str], where: Sequence[int | str | None]) -> bool:
        """Record a page none of whose keys is known (the common case, in bulk)."""
        handed = self._handed
        if not (
            self._kept.isdisjoint(keys)
            and self._retired.keys().isdisjoint(keys)
            and handed.keys().isdisjoint(keys)
            and len(set(keys)) == len(keys)
        ):
            return False
        new = list(map(_Entry, keys, where))
        self._entries.extend(new)
        handed.update(zip(keys, new, strict=True))
        if self._stale:
            self._stale.difference_update(keys)
        return True

    def _compact(self) -> None:
        entries, cursor = self._entries, self._kind == "cursor"
        moved = False
        while entries and entries[0].acked:
            e = entries.popleft()
            self._handed.pop(e.key, None)
            self._ahead.discard(e.key)
            self._retire(e.key)
            moved = True
            if not cursor:
                assert isinstance(e.pos, int)
                self._offset = max(self._offset, e.pos + 1, e.end)
                continue
            assert not isinstance(e.pos, int)
            if e.pos != self._token:
                self._token, self._behind = e.pos, []
            self._behind.append(e.key)
        if cursor and entries and entries[0].pos != self._token:
            head = entries[0].pos
            assert not isinstance(head, int)
            self._token, self._behind = head, []
        if moved and self._room is not None:
            self._room.set()
            self._room = None

    def _page_end(self, next_offset: int) -> None:
        """An offset page was handed out up to ``next_offset``: the items it
        passed by (not matching a client-side filter) need no ack."""
        if self._entries:
            tail = self._entries[-1]
            tail.end = max(tail.end, next_offset)
        else:
            self._offset = max(self._offset, next_offset)

    def _retire(self, key: str) -> None:
        retired = self._retired
        if key in retired:
            retired.move_to_end(key)
        else:
            retired[key] = None
        if len(retired) > self.max_pending:
            retired.popitem(last=False)

    def _finished(self) -> None:
        """The scan reached the listing's end: acked keys it never met are gone."""
        self._kept.clear()


class _Tap(Generic[T]):
    """One scan's view of its checkpoint: filters and records what it hands out."""

    def __init__(
        self,
        cp: Checkpoint,
        generation: int,
        key: Callable[[T], str],
        start_token: str | None,
        whole: bool,
    ) -> None:
        self._cp = cp
        self._generation = generation
        self._key = key
        self._token = start_token  # the token of the page being handed out
        self._whole = whole  # no max_items: the scan's end is the listing's

    def _check(self) -> Checkpoint:
        cp = self._cp
        if cp._generation != self._generation:
            raise RuntimeError("this checkpoint was passed to a newer scan: one scan at a time")
        return cp

    async def room(self) -> None:
        """Wait while ``max_pending`` items are out and not acknowledged."""
        cp = self._check()
        while len(cp._entries) >= cp.max_pending:
            if cp._room is None:
                cp._room = anyio.Event()
            await cp._room.wait()

    def hand(self, item: T, pos: int) -> bool:
        """An item of an offset listing at ``pos``: hand it out?"""
        return self._check()._hand(self._key(item), pos)

    def take(self, page: Page[T], filter_mode: FilterMode | None) -> Page[T]:
        """A page as handed out: without the items already acknowledged."""
        cp = self._check()
        if filter_mode is not None:
            cp._filter_mode = filter_mode  # a resumed scan must count offsets alike
        if page.total_size is not None:
            cp._total = page.total_size
        items = page.items
        keys = list(map(self._key, items))
        if cp._retired and not cp._retired.keys().isdisjoint(keys):
            _check_repeat(page, [k for k in keys if k in cp._retired and k not in cp._kept])
        where: Sequence[int | str | None]
        if cp._kind == "cursor":
            token, self._token = self._token, page.next_token
            where = [token] * len(items)
        else:
            where = page.positions or range(page.offset, page.offset + len(items))
        kept = self._keep(cp, page, keys, where)
        if cp._kind != "cursor":
            cp._page_end(page.next_offset)
        return kept

    def _keep(
        self, cp: Checkpoint, page: Page[T], keys: list[str], where: Sequence[int | str | None]
    ) -> Page[T]:
        """``page`` without the items done already, the rest recorded."""
        items = page.items
        if cp._all_new(keys, where):
            return page
        keep = [cp._hand(k, p) for k, p in zip(keys, where, strict=True)]
        if all(keep):
            return page
        # Positions say where each item handed out sits, so that the progress
        # (next_offset; next_skip inside a cursor page) counts the items skipped.
        positions = page.positions
        if positions is None:
            positions = list(range(page.offset, page.offset + len(items)))
        return dataclasses.replace(
            page,
            items=[item for item, k in zip(items, keep, strict=True) if k],
            positions=[p for p, k in zip(positions, keep, strict=True) if k],
        )

    def end(self, done: bool) -> None:
        """The scan stopped; ``done``: it handed out its end."""
        if done and self._whole:
            self._check()._finished()


def _check_repeat(page: Page[Any], repeated: list[str]) -> None:
    """A page that holds items done before the watermark: past a known end it is
    a clamped answer (they are skipped); anywhere else the server answered with
    a stale page or the listing moved, and what this page should hold is unknown."""
    if not repeated or (page.total_size is not None and page.offset >= page.total_size):
        return
    raise DriftError(
        f"the page at offset {page.offset} holds item {cut(repeated[0])}, acknowledged before "
        "the checkpoint's position: the server answered with a stale page or the listing "
        "moved; a new scan from the checkpoint asks again",
        offset=-1,
    )

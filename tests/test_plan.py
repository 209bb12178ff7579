"""The pagination planner, driven by a model server with no network and no loop.

Every case checks the property that matters: the emitted items are exactly the
listing, in order, once each, whatever the completion order of the requests,
the server's silent cap, or how wrong its ``total_size`` is.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from plan_model import TOTALS, ModelServer, Refused, drive

from aiobatch import PaginationError
from aiobatch._paging.plan import DriftError, PageRequest, ScanPlan


@pytest.mark.parametrize(
    ("n", "page_size"),
    [(n, s) for n in (0, 1, 99, 100, 101, 250, 1000) for s in (1, 7, 100) if s > 1 or n <= 101],
)
@pytest.mark.parametrize("total", sorted(TOTALS))
@pytest.mark.parametrize("order", ["fifo", "lifo", 1, 2])
def test_every_item_once_in_order(n: int, page_size: int, total: str, order: str | int) -> None:
    server = ModelServer(n, total=TOTALS[total])
    plan = ScanPlan(start_offset=0, page_size=page_size, window=4, raise_on_drift=False)
    assert drive(plan, server, order) == list(range(n))
    # A listing that ends short of its total is said (issue 20 case 3): as drift.
    short = total == "too_high"
    assert bool(plan.drift) is short
    if short:
        assert "short of its total_size" in plan.drift[0]
    # Bounded waste: speculation never exceeds the window beyond the real end
    # (plus, where the end is not exactly at the total, two confirmations of
    # each empty page that was the lowest seen when it arrived: at most a
    # window of such pages).
    pages = -(-n // page_size)
    confirmations = 0 if total == "exact" else 8
    assert len(server.requests) <= pages + 4 + 2 + confirmations


@pytest.mark.parametrize(
    ("n", "cap"),
    [(n, c) for n in (0, 5, 200, 999, 1000, 4321) for c in (1, 3, 50, 200) if c > 1 or n < 999],
)
@pytest.mark.parametrize("total", sorted(TOTALS))
@pytest.mark.parametrize("order", ["fifo", "lifo", 7])
def test_silent_cap_is_detected_and_adapted(n: int, cap: int, total: str, order: str | int) -> None:
    server = ModelServer(n, cap=cap, total=TOTALS[total])
    plan = ScanPlan(start_offset=0, page_size=1000, window=8)
    assert drive(plan, server, order) == list(range(n))
    if n > cap:
        assert plan.step == cap  # adapted to what the server really serves


@pytest.mark.parametrize(
    ("start", "max_items"), [(0, 0), (0, 1), (10, 95), (500, None), (37, 1000)]
)
def test_start_offset_and_max_items(start: int, max_items: int | None) -> None:
    server = ModelServer(1000)
    plan = ScanPlan(start_offset=start, page_size=100, window=4, max_items=max_items)
    expected = list(range(start, 1000))[: max_items if max_items is not None else None]
    assert drive(plan, server) == expected


def test_exact_multiple_needs_one_probe_past_the_end() -> None:
    server = ModelServer(1000)
    plan = ScanPlan(start_offset=0, page_size=100, window=1)
    assert drive(plan, server) == list(range(1000))
    assert [r.offset for r in server.requests] == [*range(0, 1000, 100), 1000]


def test_known_total_asks_a_full_last_page_then_probes_the_total() -> None:
    server = ModelServer(950)
    plan = ScanPlan(start_offset=0, page_size=100, window=1)
    drive(plan, server)
    asked = [(r.offset, r.limit) for r in server.requests]
    # The last page is asked full-size (a total a little low shows in it), and
    # only then the total itself: the same number of requests as before.
    assert asked == [(o, 100) for o in range(0, 1000, 100)] + [(950, 50)]


def test_with_a_window_the_last_page_is_asked_full_size_and_counts_as_the_probe() -> None:
    plan = ScanPlan(start_offset=0, page_size=100, window=8)
    plan.next_requests()
    plan.record(0, 100, total=250, first_key="k0", last_key="k99")
    # No probe beyond the last page: its answer says where to probe (issue 20
    # case 4; an empty answer above the total would have to be confirmed).
    assert [(r.offset, r.limit) for r in plan.next_requests()] == [(100, 100), (200, 100)]
    plan.record(200, 50, total=250, first_key="k200", last_key="k249")
    assert [(r.offset, r.limit) for r in plan.next_requests()] == [(250, 50)]


def test_first_page_alone_then_plan_from_the_total() -> None:
    plan = ScanPlan(start_offset=0, page_size=100, window=16)
    assert [r.offset for r in plan.next_requests()] == [0]
    assert plan.next_requests() == []  # nothing more until the first page is back
    plan.record(0, 100, total=300, first_key="k0", last_key="k99")
    # The total is known: up to it, plus one probe beyond it, not a window.
    assert [r.offset for r in plan.next_requests()] == [100, 200, 300]


def test_without_a_total_the_look_ahead_grows_as_pages_come_back_full() -> None:
    # Issue 26: not a fixed burst of a window (a one-page job cost 16 extra
    # requests): each full page admits two more, up to the window.
    plan = ScanPlan(start_offset=0, page_size=100, window=6)
    plan.next_requests()
    plan.record(0, 100, total=None, first_key="k0", last_key="k99")
    assert [r.offset for r in plan.next_requests()] == [100]
    plan.record(100, 100, total=None, first_key="k100", last_key="k199")
    assert [r.offset for r in plan.next_requests()] == [200, 300]
    plan.record(200, 100, total=None, first_key="k200", last_key="k299")
    assert [r.offset for r in plan.next_requests()] == [400, 500]
    plan.record(300, 100, total=None, first_key="k300", last_key="k399")
    assert [r.offset for r in plan.next_requests()] == [600, 700]
    plan.record(400, 100, total=None, first_key="k400", last_key="k499")
    assert [r.offset for r in plan.next_requests()] == [800, 900]
    plan.record(500, 100, total=None, first_key="k500", last_key="k599")
    assert [r.offset for r in plan.next_requests()] == [1000, 1100]
    plan.record(600, 100, total=None, first_key="k600", last_key="k699")
    assert [r.offset for r in plan.next_requests()] == [1200]  # the window is 6


def test_total_too_low_still_reaches_the_end() -> None:
    server = ModelServer(10_000, total=lambda n: 100)
    plan = ScanPlan(start_offset=0, page_size=100, window=8)
    assert drive(plan, server, "fifo") == list(range(10_000))


def test_offset_ignored_is_raised_not_looped() -> None:
    server = ModelServer(1000, ignore_offset=True)
    plan = ScanPlan(start_offset=0, page_size=100, window=4)
    with pytest.raises(PaginationError, match="ignores `offset`") as info:
        drive(plan, server)
    assert info.value.offset <= 100


def test_moving_total_is_drift() -> None:
    plan = ScanPlan(start_offset=0, page_size=10, window=2)
    plan.next_requests()
    plan.record(0, 10, total=100, first_key="a", last_key="b")
    plan.next_requests()
    with pytest.raises(DriftError, match="total_size moved from 100 to 90") as info:
        plan.record(10, 10, total=90, first_key="c", last_key="d")
    assert info.value.offset == 10


@pytest.mark.parametrize("on_drift", ["raise", "warn"])
def test_a_resumed_scan_told_a_lower_total_than_its_last_is_drift(on_drift: str) -> None:
    """Items left the front between two scans: the resume offset now skips some."""
    plan = ScanPlan(
        start_offset=50, page_size=10, window=2, last_total=100, raise_on_drift=on_drift == "raise"
    )
    plan.next_requests()
    if on_drift == "raise":
        with pytest.raises(DriftError, match=r"total_size fell from 100 .* to 99"):
            plan.record(50, 10, total=99, first_key="a", last_key="b")
        return
    assert [r.offset for r in plan.record(50, 10, total=99, first_key="a", last_key="b")] == [50]
    assert len(plan.drift) == 1
    assert "fell from 100" in plan.drift[0]


def test_a_resumed_scan_told_a_higher_total_is_not_drift() -> None:
    plan = ScanPlan(start_offset=50, page_size=10, window=2, last_total=100)
    plan.next_requests()
    assert [r.offset for r in plan.record(50, 10, total=104, first_key="a", last_key="b")] == [50]
    assert plan.drift == []


def test_drift_can_be_accepted_and_is_recorded() -> None:
    plan = ScanPlan(start_offset=0, page_size=10, window=2, raise_on_drift=False)
    plan.next_requests()
    plan.record(0, 10, total=100, first_key="a", last_key="b", keys=[*"a12345678", "b"])
    plan.next_requests()
    repeat = ["b", *"cdefghijk"]
    # A page that repeats an item delivered before is asked again, twice...
    for _ in range(2):
        assert plan.record(10, 10, total=90, first_key="b", last_key="k", keys=repeat) == []
        assert [(r.offset, r.limit) for r in plan.next_requests()][:1] == [(10, 10)]
    # ...then accepted as drift: recorded, and the repeated item is dropped.
    ready = plan.record(10, 10, total=90, first_key="b", last_key="k", keys=repeat)
    assert [(r.offset, r.take, r.dedup) for r in ready] == [(10, 10, True)]
    assert ready[0].skip == frozenset({hash("b")})
    assert plan.drift == [
        "1 item(s) at offset 10 were already received (item 'b', also at offset 0): "
        "the server's order is not stable (ties?) or the listing moved",
        "total_size moved from 100 to 90 (page at 10)",
    ]
    assert plan.skipped == 1


def test_a_repeat_inside_one_page_names_the_item() -> None:
    # Issue 24, case 13: the drift note names the item repeated within a page.
    plan = ScanPlan(start_offset=0, page_size=5, window=1, raise_on_drift=False)
    plan.next_requests()
    keys = ["a", "dup", "c", "dup", "e"]
    ready: list[Any] = []
    for _ in range(3):  # asked again, then accepted as drift
        ready = plan.record(0, 5, total=5, first_key="a", last_key="e", keys=keys)
        if ready:
            break
        plan.next_requests()
    assert ready
    assert plan.drift[0].startswith("1 item(s) at offset 0 were already received (item 'dup', ")
    assert "twice in this page" in plan.drift[0]


def test_an_empty_page_with_items_beyond_it_is_asked_again_then_fails() -> None:
    plan = ScanPlan(start_offset=0, page_size=10, window=3)
    plan.next_requests()
    plan.record(0, 10, total=None, first_key="a", last_key="b")
    assert [r.offset for r in plan.next_requests()] == [10]
    plan.record(10, 10, total=None, first_key="c", last_key="d")
    assert [r.offset for r in plan.next_requests()] == [20, 30]
    plan.record(30, 10, total=None, first_key="x", last_key="y")
    plan.record(20, 0, total=None, first_key=None, last_key=None)  # items at 30: a glitch?
    assert plan.end is None
    assert (20, 10) in [(r.offset, r.limit) for r in plan.next_requests()]
    plan.record(20, 0, total=None, first_key=None, last_key=None)
    plan.next_requests()
    with pytest.raises(PaginationError, match="3 times, but it holds items at offset 30"):
        plan.record(20, 0, total=None, first_key=None, last_key=None)


def test_items_beyond_a_believed_end_reopen_the_scan() -> None:
    plan = ScanPlan(start_offset=0, page_size=10, window=3)
    plan.next_requests()
    plan.record(0, 10, total=40, first_key="a", last_key="b")
    assert [r.offset for r in plan.next_requests()] == [10, 20, 30]
    for _ in range(2):  # below the total: asked again, twice
        plan.record(20, 0, total=40, first_key=None, last_key=None)
        plan.next_requests()
    plan.record(20, 0, total=40, first_key=None, last_key=None)  # confirmed: the end...
    assert plan.end == 20
    assert not plan.finished  # ...but 10 and 30 are still out
    plan.record(30, 10, total=40, first_key="x", last_key="y")  # ...and 30 holds items
    assert plan.end is None
    assert [r.offset for r in plan.next_requests()] == [20]
    assert [r.offset for r in plan.record(10, 10, total=40, first_key="c", last_key="d")] == [10]
    ready = plan.record(20, 10, total=40, first_key="e", last_key="f")
    assert [r.offset for r in ready] == [20, 30]


def test_a_short_page_ending_at_a_wrong_total_is_not_the_end() -> None:
    # A server that caps at block boundaries, and a total that happens to agree.
    # (the job's counts said 40: three pages out at once, no total to ramp from)
    plan = ScanPlan(start_offset=0, page_size=10, window=3, expected_end=40)
    assert [r.offset for r in plan.next_requests()] == [0, 10, 20]
    plan.record(0, 10, total=None, first_key="k0", last_key="k9")
    assert [r.offset for r in plan.next_requests()] == [30]
    plan.record(10, 4, total=14, first_key="k10", last_key="k13")  # looks like the end
    assert plan.end is None
    plan.record(20, 10, total=14, first_key="k20", last_key="k29")  # ...and it was not
    plan.record(30, 0, total=14, first_key=None, last_key=None)
    # exactly the hole the short page left, nothing that overlaps a request, and
    # the empty page past the (wrong) total is confirmed once
    assert [(r.offset, r.limit) for r in plan.next_requests()] == [(14, 6), (30, 10)]
    plan.record(30, 0, total=14, first_key=None, last_key=None)
    plan.next_requests()
    plan.record(30, 0, total=14, first_key=None, last_key=None)
    ready = plan.record(14, 6, total=14, first_key="k14", last_key="k19")
    assert [(r.offset, r.take) for r in ready] == [(14, 6), (20, 10)]
    assert plan.finished


def test_short_page_without_a_total_is_confirmed_by_an_empty_probe() -> None:
    plan = ScanPlan(start_offset=0, page_size=10, window=1)
    plan.next_requests()
    plan.record(0, 10, total=None, first_key="k0", last_key="k9")
    plan.next_requests()
    plan.record(10, 4, total=None, first_key="k10", last_key="k13")
    assert plan.end is None  # a short page alone never ends a scan
    assert [(r.offset, r.limit) for r in plan.next_requests()] == [(14, 6)]
    for _ in range(2):  # without a total, an empty page is confirmed (twice)
        plan.record(14, 0, total=None, first_key=None, last_key=None)
        assert not plan.finished
        assert [(r.offset, r.limit) for r in plan.next_requests()] == [(14, 6)]
    plan.record(14, 0, total=None, first_key=None, last_key=None)
    assert plan.finished


@dataclass
class WobblyServer(ModelServer):
    """Every response capped at a random size: a server under varying load."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def answer(self, req: PageRequest) -> tuple[list[int], int | None] | Refused:
        self.cap = self.rng.randint(1, req.limit)
        return super().answer(req)


@pytest.mark.parametrize("seed", range(60))
def test_a_cap_that_changes_on_every_request_loses_nothing(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(0, 600)
    server = WobblyServer(n, total=rng.choice(list(TOTALS.values())), rng=rng)
    plan = ScanPlan(start_offset=0, page_size=rng.choice([5, 50, 200]), window=rng.randrange(1, 9))
    assert drive(plan, server, seed, max_steps=50_000) == list(range(n))


@pytest.mark.parametrize("seed", range(40))
def test_a_cap_that_drops_mid_scan_loses_nothing(seed: int) -> None:
    rng = random.Random(seed)

    @dataclass
    class Dropping(ModelServer):
        def answer(self, req: PageRequest) -> tuple[list[int], int | None] | Refused:
            self.cap = None if len(self.requests) < 4 else 30
            return super().answer(req)

    n = rng.randrange(100, 3000)
    server = Dropping(n, total=rng.choice(list(TOTALS.values())))
    plan = ScanPlan(start_offset=0, page_size=100, window=rng.randrange(1, 12))
    assert drive(plan, server, seed) == list(range(n))


def test_over_delivery_is_trimmed_to_the_limit() -> None:
    plan = ScanPlan(start_offset=0, page_size=10, window=1)
    plan.next_requests()
    ready = plan.record(0, 15, total=None, first_key="a", last_key="b")
    assert [(r.offset, r.take) for r in ready] == [(0, 10)]
    assert plan.next_emit == 10


def test_window_bounds_outstanding_pages() -> None:
    plan = ScanPlan(start_offset=0, page_size=10, window=5)
    plan.next_requests()
    for k in range(5):  # without a total, the look-ahead grows to the window first
        plan.record(k * 10, 10, total=None, first_key=f"k{k}", last_key=f"k{k}z")
        plan.next_requests()
    assert sorted(plan._inflight) == [50, 60, 70, 80, 90]
    assert plan.next_requests() == []
    # An out-of-order page stays buffered and still counts against the window.
    plan.record(90, 10, total=None, first_key="k90", last_key="k99")
    assert plan.next_requests() == []
    plan.record(50, 10, total=None, first_key="k50", last_key="k59")
    assert [r.offset for r in plan.next_requests()] == [100]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"page_size": 0}, "page_size"),
        ({"window": 0}, "window"),
        ({"start_offset": -1}, "start_offset"),
        ({"max_items": -1}, "max_items"),
    ],
)
def test_bad_arguments(kwargs: dict[str, int], message: str) -> None:
    args: dict[str, Any] = {"start_offset": 0, "page_size": 10, "window": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        ScanPlan(**args)


def test_many_random_shapes() -> None:
    rng = random.Random(2026)
    for n, size, cap, window, seed in itertools.islice(
        (
            (
                rng.randrange(0, 3000),
                rng.choice([1, 10, 64, 500]),
                rng.choice([None, 5, 33, 250]),
                rng.randrange(1, 20),
                rng.randrange(1000),
            )
            for _ in itertools.count()
        ),
        150,
    ):
        if size == 1 and n > 300:
            continue
        server = ModelServer(n, cap=cap, total=rng.choice(list(TOTALS.values())))
        plan = ScanPlan(start_offset=0, page_size=size, window=window)
        assert drive(plan, server, seed) == list(range(n)), (n, size, cap, window, seed)

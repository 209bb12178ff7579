"""The generator without HTTP: block layout arithmetic, pages, determinism,
running-job progression."""

from __future__ import annotations

import tracemalloc

import msgspec
import pytest

from aiobatch import BatchItem
from aiobatch.testing import DEFAULT_MIX, SimClock, SimJob
from aiobatch.testing._data import ItemEncoder, parse_item_id
from aiobatch.testing._jobs import JobState, View
from aiobatch.testing._layout import BLOCK, CODE, STATUSES, StatusLayout, apportion, mix_weights

_items = msgspec.json.Decoder(list[BatchItem])
T0 = 1_750_000_000.0


def _brute(view: View, status: str | None) -> list[int]:
    """Every index with ``status``, the slow way (one status lookup per item)."""
    return [i for i in range(view.total) if status is None or view.status_of(i) == CODE[status]]


def _views(total: int) -> list[View]:
    """A job in every shape: finished, cancelled, running early/late, cancelled mid-run."""
    still = JobState(SimJob(total_items=total, seed=7), now=T0)
    cancelled = JobState(SimJob(total_items=total, seed=7), now=T0)
    cancelled.cancelled_at = T0
    live = JobState(SimJob(total_items=total, seed=3, running=True, rate=100.0), now=T0)
    stopped = JobState(SimJob(total_items=total, seed=3, running=True, rate=100.0), now=T0)
    stopped.cancelled_at = T0 + 4.0
    return [
        still.view(T0),
        cancelled.view(T0),
        live.view(T0 + 3.0),
        live.view(T0 + total / 100.0 - 1),
        stopped.view(T0 + 9.0),
    ]


def test_apportion_is_exact() -> None:
    counts = apportion(mix_weights(DEFAULT_MIX), BLOCK)
    assert sum(counts) == BLOCK
    assert counts[CODE["completed"]] == 880
    assert apportion([1, 1, 1], 10) == (4, 3, 3)


def test_every_full_block_holds_the_same_counts() -> None:
    layout = StatusLayout(10 * BLOCK + 123, mix_weights(DEFAULT_MIX), seed=5)
    for b in range(10):
        codes = layout.codes(b)
        assert tuple(codes.count(c) for c in range(6)) == layout.counts
    assert len(layout.codes(10)) == 123
    assert layout.codes(3) != layout.codes(4)  # shuffled differently per block


@pytest.mark.parametrize("view_index", range(5))
def test_filtered_pages_match_brute_force(view_index: int) -> None:
    view = _views(2537)[view_index]
    for status in (None, *STATUSES):
        truth = _brute(view, status)
        assert view.count(status) == len(truth)
        for offset, limit in ((0, 7), (3, 100), (len(truth) - 5, 50), (len(truth) + 1, 10)):
            offset = max(offset, 0)
            page = view.page(status, offset, limit)
            assert [i for i, _ in page] == truth[offset : offset + limit], (status, offset)
            assert all(view.status_of(i) == code for i, code in page)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def page(seed: int) -> str:
        state = JobState(SimJob(total_items=5000, seed=seed), now=T0)
        view = state.view(T0)
        return ItemEncoder(state).encode(view.page("failed", 40, 100), view)

    assert page(1) == page(1)
    assert page(1) != page(2)


def test_items_are_realistic_and_ids_lead_back() -> None:
    six = {"completed": 80, "failed": 6, "skipped": 5, "cancelled": 3, "pending": 4}
    six["processing"] = 2
    state = JobState(SimJob(total_items=3000, seed=2, mix=six), now=T0)
    view = state.view(T0)
    items = _items.decode(f"[{ItemEncoder(state).encode(view.page(None, 0, 3000), view)}]")
    assert {it.status for it in items} == set(STATUSES)
    assert len({it.item_id for it in items}) == 3000
    assert {it.item_name.rsplit(".", 1)[1] for it in items} >= {"pdf", "docx", "xlsx", "png"}
    assert any(not it.item_name.isascii() for it in items)
    failed = [it for it in items if it.status == "failed"]
    assert all(it.error_message and it.job_id and it.completed_at for it in failed)
    assert any(it.error_message and "文字化け" in it.error_message for it in failed)
    skipped = [it for it in items if it.status == "skipped"]
    assert all(it.skip_reason for it in skipped)
    done = [it for it in items if it.status == "completed"]
    assert all(
        it.started_at and it.completed_at and it.started_at < it.completed_at and it.job_record_id
        for it in done
    )
    assert parse_item_id(items[1234].item_id) == (state.key, 1234)
    other = JobState(SimJob(job_id="bjb-other", total_items=3000, seed=2), now=T0)
    assert other.key != state.key


def test_huge_job_serves_deep_pages_without_materialising() -> None:
    total = 5_000_000
    tracemalloc.start()
    try:
        state = JobState(SimJob(total_items=total, seed=11), now=T0)
        view = state.view(T0)
        encoder = ItemEncoder(state)
        last = view.page(None, total - 1000, 1000)
        failed_total = view.count("failed")
        deep = view.page("failed", failed_total - 600, 1000)
        body = f"[{encoder.encode(last, view)}]"
        deep_body = f"[{encoder.encode(deep, view)}]"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
    assert failed_total == total // BLOCK * state.layout.counts[CODE["failed"]]
    assert [i for i, _ in last] == list(range(total - 1000, total))
    assert _items.decode(body)[-1].item_id == f"itm_{state.key}_4999999"
    assert len(deep) == 600  # the filtered listing ends exactly where the count says
    indices = [i for i, _ in deep]
    assert indices == sorted(indices)
    assert {it.status for it in _items.decode(deep_body)} == {"failed"}
    # The k-th failed item has exactly k failed items before it.
    mask = 1 << CODE["failed"]
    assert state.layout.count_before(mask, indices[0]) == failed_total - 600
    assert len(state.layout._codes) < 50  # a few blocks, not 5000


def test_running_job_progresses_with_the_clock() -> None:
    clock = SimClock.frozen_at(T0)
    state = JobState(SimJob(total_items=100, running=True, rate=10.0, concurrency=5), now=clock())
    view = state.view(clock())
    assert (view.done, view.started) == (0, 1)
    assert view.count("pending") == 99
    clock.advance(3.0)
    view = state.view(clock())
    assert (view.done, view.started) == (26, 31)
    assert view.count("processing") == 5
    assert view.count("pending") == 69
    assert {view.status_of(i) for i in range(26)} <= {
        CODE[s] for s in ("completed", "failed", "skipped", "cancelled")
    }
    clock.advance(60.0)
    view = state.view(clock())
    assert view.count("pending") == view.count("processing") == 0


def test_cancel_mid_run_lets_in_flight_items_finish() -> None:
    clock = SimClock.frozen_at(T0)
    state = JobState(SimJob(total_items=100, running=True, rate=10.0, concurrency=5), now=T0)
    clock.advance(2.0)  # started 21, done 16
    state.cancelled_at = clock()
    clock.advance(30.0)
    view = state.view(clock())
    assert view.count("cancelled") >= 100 - 21
    assert view.count("processing") == view.count("pending") == 0
    assert all(view.status_of(i) == CODE["cancelled"] for i in range(21, 100))

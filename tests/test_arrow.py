"""``aiobatch.arrow``: scans as typed Arrow record batches and tables."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiobatch import BatchClient, BatchItem, ItemStatus, Page, iter_arrow, to_arrow
from aiobatch.arrow import DEFAULT_BATCH_SIZE, ITEM_COLUMNS, item_schema, record_batch
from aiobatch.testing import Faults, SimJob, Simulator

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")
pl = pytest.importorskip("polars")

pytestmark = pytest.mark.usefixtures("no_env")

ROOT = Path(__file__).resolve().parent.parent
STATUSES = [s.value for s in ItemStatus]


def client_for(sim: Simulator) -> BatchClient:
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url)


# --- the million-item scan ---------------------------------------------------------------

BIG = 1_000_000


@pytest.mark.slow
async def test_million_item_scan_to_arrow_has_exact_counts_per_status() -> None:
    """A 1M-item scan from the in-process simulator, through ``to_arrow``, counted
    with pyarrow.compute and loaded into polars with no hand-written conversion."""
    job = SimJob(job_id="bjb-arrow-1m", total_items=BIG, seed=3)
    async with Simulator([job], max_limit=5000) as sim, client_for(sim) as client:
        started = time.perf_counter()
        table = await to_arrow(
            client.job_items.iter_pages(job.job_id, page_size=5000, concurrency=4)
        )
        elapsed = time.perf_counter() - started
        truth = {s: sim.count(job.job_id, s) for s in STATUSES}
        first, last = sim.item_id(job.job_id, 0), sim.item_id(job.job_id, BIG - 1)
    print(f"\n1M items scanned into Arrow in {elapsed:.1f}s")
    assert table.num_rows == BIG
    assert table.schema == item_schema()
    assert [len(c) for c in table.column("item_id").chunks] == [DEFAULT_BATCH_SIZE] * (
        BIG // DEFAULT_BATCH_SIZE
    ) + [BIG % DEFAULT_BATCH_SIZE]
    counts = {row["values"]: row["counts"] for row in pc.value_counts(table["status"]).to_pylist()}
    assert counts == {s: n for s, n in truth.items() if n}
    assert sum(counts.values()) == BIG
    assert pc.count_distinct(table["item_id"]).as_py() == BIG
    assert table["item_id"][0].as_py() == first
    assert table["item_id"][BIG - 1].as_py() == last
    # failed items carry an error message, and only they do
    failed = table.filter(pc.equal(table["status"].cast(pa.string()), "failed"))
    assert failed.num_rows == truth["failed"]
    assert failed["error_message"].null_count == 0
    assert table["error_message"].null_count == BIG - truth["failed"]
    # polars reads the table as it is (dictionary statuses, UTC timestamps)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    by_status = dict(frame.group_by("status").len().iter_rows())
    assert by_status == {s: n for s, n in truth.items() if n}
    assert frame["item_id"].n_unique() == BIG
    assert str(frame.schema["completed_at"]).endswith("time_zone='UTC')")


# --- shape and values --------------------------------------------------------------------


def test_schema_is_typed() -> None:
    schema = item_schema()
    assert tuple(schema.names) == ITEM_COLUMNS
    assert schema.field("status").type == pa.dictionary(pa.int32(), pa.string())
    for name in ("started_at", "completed_at", "effective_at"):
        assert schema.field(name).type == pa.timestamp("us", tz="UTC")
    for name in ("item_id", "item_name", "error_message", "skip_reason", "job_id"):
        assert schema.field(name).type == pa.string()
    assert not schema.field("item_id").nullable
    assert schema.field("error_message").nullable


@pytest.mark.parametrize("pages", [False, True])
async def test_batches_have_the_chosen_size_and_the_items_values(pages: bool) -> None:
    job = SimJob(job_id="bjb-arrow-small", total_items=2500, seed=9)
    async with Simulator([job]) as sim, client_for(sim) as client:
        source: Any = (
            client.job_items.iter_pages(job.job_id, page_size=300)
            if pages
            else client.job_items.iter(job.job_id, page_size=300)
        )
        batches = [b async for b in iter_arrow(source, batch_size=1000)]
        truth = list(sim.items(job.job_id))
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    table = pa.Table.from_batches(batches)
    for name in ITEM_COLUMNS:
        got = table.column(name).to_pylist()
        assert got == [getattr(i, name) for i in truth], name
    assert all(t.tzinfo is not None for t in table.column("completed_at").to_pylist() if t)


async def test_unknown_statuses_survive_in_the_dictionary() -> None:
    job = SimJob(job_id="bjb-arrow-open", total_items=300)
    faults = Faults(unknown_status_every=7, unknown_status_value="quarantined")
    async with Simulator([job], faults=faults) as sim, client_for(sim) as client:
        table = await to_arrow(client.job_items.iter(job.job_id))
    statuses = table.column("status").to_pylist()
    assert statuses.count("quarantined") == math.ceil(300 / 7)


async def test_empty_scan_is_an_empty_table_with_the_schema() -> None:
    job = SimJob(job_id="bjb-arrow-empty", total_items=0)
    async with Simulator([job]) as sim, client_for(sim) as client:
        table = await to_arrow(client.job_items.iter_pages(job.job_id))
    assert table.num_rows == 0
    assert table.schema == item_schema()


def test_record_batch_of_plain_items() -> None:
    items = [
        BatchItem(item_id="a", item_name="a.pdf", status=ItemStatus.FAILED, error_message="x"),
        BatchItem(item_id="b", item_name="b.pdf", status=ItemStatus("new-status")),
    ]
    batch = record_batch(items)
    assert batch.column(batch.schema.get_field_index("status")).to_pylist() == [
        "failed",
        "new-status",
    ]
    assert batch.column(batch.schema.get_field_index("error_message")).to_pylist() == ["x", None]


# --- arguments and closing ---------------------------------------------------------------


class Source:
    """An async iterator of items that records whether it was closed."""

    def __init__(self, n: int) -> None:
        self.items = iter(
            [
                BatchItem(item_id=f"i{k}", item_name="n", status=ItemStatus.COMPLETED)
                for k in range(n)
            ]
        )
        self.closed = False

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> BatchItem:
        try:
            return next(self.items)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed = True


async def test_stopping_early_closes_the_source() -> None:
    source = Source(10)
    gen = iter_arrow(source, batch_size=2)
    async for batch in gen:
        assert batch.num_rows == 2
        break
    await gen.aclose()
    assert source.closed


async def test_a_finished_source_is_left_alone() -> None:
    source = Source(5)
    assert (await to_arrow(source, batch_size=2)).num_rows == 5
    assert not source.closed


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10"])
async def test_batch_size_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        await to_arrow(Source(1), batch_size=bad)


async def test_pages_of_jobs_are_refused() -> None:
    async def jobs() -> AsyncIterator[Page[Any]]:
        yield Page(offset=0, next_offset=1, items=[object()], total_size=1)

    with pytest.raises(TypeError, match=r"BatchItems or Pages of BatchItems.*got object"):
        await to_arrow(jobs())


# --- without pyarrow ---------------------------------------------------------------------


async def test_without_pyarrow_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    with pytest.raises(ImportError, match=r"pip install 'aiobatch\[parquet\]'"):
        item_schema()
    with pytest.raises(ImportError, match=r"aiobatch\[parquet\]"):
        await to_arrow(Source(1))


def test_importing_aiobatch_does_not_import_pyarrow() -> None:
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "import aiobatch, aiobatch.arrow\n"
        "from aiobatch import iter_arrow, to_arrow\n"
        "assert sys.modules['pyarrow'] is None\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr

"""``aiobatch items export --compression``: the Parquet writer shares ``aiobatch.arrow``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import clear_env, cli

from aiobatch.arrow import item_schema
from aiobatch.testing import SimJob, Simulator

JOB = "bjb-cli-parquet"
N = 1500


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[SimJob(job_id=JOB, total_items=N, seed=2)]) as s:
        yield s


@pytest.mark.parametrize(
    ("args", "codec"),
    [
        ([], "ZSTD"),
        (["--compression", "zstd"], "ZSTD"),
        (["--compression", "snappy"], "SNAPPY"),
        (["--compression", "gzip"], "GZIP"),
        (["--compression", "none"], "UNCOMPRESSED"),
    ],
)
async def test_parquet_compression(
    sim: Simulator, tmp_path: Path, args: list[str], codec: str
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "items.parquet"
    r = await cli("items", "export", "--job-id", JOB, "-o", str(out), *args, sim=sim)
    assert r.code == 0, r.err
    meta = pq.read_metadata(out)
    assert meta.num_rows == N
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {codec}
    table = pq.read_table(out)
    assert table.schema == item_schema()  # typed columns, status dictionary-encoded
    assert table.column("item_id").to_pylist() == sim.item_ids(JOB)
    assert table.column("status").to_pylist() == [i.status for i in sim.items(JOB)]


async def test_unknown_compression_is_a_usage_error(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "items.parquet"
    r = await cli(
        "items", "export", "--job-id", JOB, "-o", str(out), "--compression", "lz5", sim=sim
    )
    assert r.code == 2
    assert "--compression" in r.err

"""Smoke test of the results-download benchmark: a tiny plan runs end to end
(simulator and memory child in their own processes), every client returns the
expected results, and the report section renders.  No timing assertions."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cloud")
pytest.importorskip("psutil")

from benchmarks.__main__ import results_markdown
from benchmarks.results_download import ResultsPlan, run_results

pytestmark = pytest.mark.sdk

TINY = ResultsPlan(
    items=60,
    official_items=5,
    latency_ms=0.0,
    concurrency=4,
    rounds=1,
    big_items=4,
    big_bytes=300_000,
    big_concurrency=2,
)


async def test_results_benchmark_runs_and_reports() -> None:
    lines: list[str] = []
    r = await run_results(TINY, log=lines.append)
    assert r["problems"] == []
    assert r["counts"]["official"] == 5
    assert r["counts"]["aiobatch"] == r["counts"]["bare"] > 40
    assert all(v > 0 for v in r["items_per_s"].values())
    assert r["memory"]["count"] == 4
    assert r["memory"]["largest_result"] >= 300_000
    section = results_markdown({"results": r})
    assert "## Results download" in section
    assert "vs official >= 25x" in section
    assert len(lines) == 2

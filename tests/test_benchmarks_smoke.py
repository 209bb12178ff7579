"""Smoke test of the benchmark suite (``benchmarks/``): every benchmark runs on a
tiny input, results have the right shape and every correctness check passes.

No timing assertions: the suite reports ratios, CI only checks it cannot rot.
The simulator runs in this process here (the real suite uses its own process).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cloud")
pytest.importorskip("matplotlib")
pytest.importorskip("psutil")

from benchmarks.__main__ import Config, run, write
from benchmarks._bodies import Tally
from benchmarks.clients import CLIENTS, Client, Endpoint
from benchmarks.report import render, targets
from benchmarks.scan import ScanPlan, inprocess_server, run_once

pytestmark = pytest.mark.sdk

TINY = Config(
    name="smoke",
    decode_sizes=(300,),
    decode_rounds=1,
    decode_budget_s=0.0,
    scan=ScanPlan(
        items=300,
        latencies_ms=(0.0,),
        page_sizes=(100,),
        concurrencies=(4,),
        rounds=1,
        budget_s=0.0,
        run_timeout_s=30.0,
    ),
    memory_items=300,
    memory_concurrencies=(4,),
    memory_page_size=100,
    outputs={"json": "smoke.json", "chart": "scan-smoke.png", "summary": "summary-smoke.md"},
)


async def test_every_benchmark_runs_and_reports(tmp_path: Path) -> None:
    lines: list[str] = []
    results = await run(TINY, server=inprocess_server, log=lines.append)

    decode = results["decode"]["results"]
    assert [row["items"] for row in decode] == [300]
    cands = decode[0]["candidates"]
    assert set(cands) == {"aiobatch", "msgspec", "orjson", "pydantic", "sdk", "json"}
    for name, c in cands.items():
        assert c["correct"], name
        assert c["n"] == 1
        assert c["items_per_s"] > 0
        assert c["mb_per_s"] > 0

    cells = results["scan"]["cells"]
    assert {(c["client"], c["concurrency"]) for c in cells} == {
        ("aiobatch", 4),
        ("bare", 4),
        ("sdk-httpx", 1),
        ("sdk-aiohttp", 1),
    }
    for c in cells:
        assert c["correct"], (c["client"], c["runs"][0]["problems"])
        assert c["runs"][0]["count"] == 300
        assert c["items_per_s"] > 0

    (mem,) = results["memory"]["runs"]
    assert mem["ok"], mem["problems"]
    assert mem["count"] == 300
    assert mem["above_baseline_mib"] >= 0
    assert mem["peak_mib"] >= mem["baseline_mib"] > 0

    assert results["correctness_failures"] == []
    statuses = {t["name"]: t["status"] for t in results["targets"]}
    # 2 decode, 3 scan (50 ms vs SDK / vs bare, 0 ms vs SDK; not measured at c=4), memory
    assert len(statuses) == 6
    assert [s for n, s in statuses.items() if n.startswith("scan")] == ["N/A"] * 3
    assert all(s in ("PASS", "MISS") for n, s in statuses.items() if not n.startswith("scan"))
    assert "PASS  correctness" in render(results)

    written = write(results, TINY, tmp_path)
    assert {p.name for p in written} == {"smoke.json", "scan-smoke.png", "summary-smoke.md"}
    assert json.loads((tmp_path / "smoke.json").read_text())["mode"] == "smoke"
    assert (tmp_path / "scan-smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| target |" in (tmp_path / "summary-smoke.md").read_text()


async def test_a_fast_but_wrong_client_is_caught() -> None:
    async def skips_a_page(ep: Endpoint, page_size: int, concurrency: int, tally: Tally) -> None:
        await CLIENTS["aiobatch"].scan(ep, page_size, concurrency, tally)
        tally.count -= page_size  # as if one page had been lost

    wrong = Client("wrong", "wrong", skips_a_page, CLIENTS["aiobatch"].warm)
    async with inprocess_server(300, 0.0) as ep:
        run_ = await run_once(wrong, ep, 100, 4)
    assert not run_["ok"]
    assert any("expected 300" in p for p in run_["problems"])


def test_targets_without_results_are_not_measured() -> None:
    empty: dict[str, Any] = {"decode": {"results": []}, "scan": {"cells": []}}
    assert {t.status for t in targets(empty)} == {"N/A"}

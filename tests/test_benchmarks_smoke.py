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
from benchmarks.clients import CLIENTS, DEFAULTS, Client, Endpoint
from benchmarks.cpu_profile import CpuPlan
from benchmarks.first_wave import FirstWavePlan
from benchmarks.markdown import summary_markdown
from benchmarks.memory import SlowConsumerPlan, run_slow_memory
from benchmarks.report import render
from benchmarks.request_counts import RequestPlan, pages_of
from benchmarks.scan import ScanPlan, inprocess_server, run_once
from benchmarks.targets import Target, request_budget, targets

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
        concurrencies=(16,),
        rounds=1,
        budget_s=0.0,
        run_timeout_s=30.0,
    ),
    memory_items=300,
    memory_concurrencies=(4,),
    memory_page_size=100,
    memory_slow=None,  # its own test below
    requests=RequestPlan(items=(37, 100, 1_000), default_items=(DEFAULTS.page_size,)),
    first_wave=FirstWavePlan(
        items=1_000, latency_ms=0.0, page_sizes=(100,), concurrencies=(4,), rounds=1
    ),
    cpu=CpuPlan(items=1_000, page_sizes=(100,), concurrency=4, rounds=1),
    outputs={"json": "smoke.json", "chart": "scan-smoke.png", "summary": "summary-smoke.md"},
)


@pytest.mark.slow
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
    # Every client with total_size; those that can do without it, without it too.
    assert {(c["client"], c["concurrency"], c["total_size"]) for c in cells} == {
        ("aiobatch", 16, True),
        ("aiobatch-iter", 16, True),
        ("aiobatch-defaults", DEFAULTS.concurrency, True),
        ("bare", 16, True),
        ("sdk-httpx", 1, True),
        ("sdk-aiohttp", 1, True),
        ("aiobatch", 16, False),
        ("aiobatch-iter", 16, False),
        ("aiobatch-defaults", DEFAULTS.concurrency, False),
        ("bare", 16, False),
    }
    for c in cells:
        assert c["correct"], (c["client"], c["runs"][0]["problems"])
        assert c["runs"][0]["count"] == 300
        assert c["items_per_s"] > 0
        assert c["client_cpu_s_per_m_items"] > 0

    rows = results["requests"]["rows"]
    assert [(r["items"], r["pages"], r["total_size"]) for r in rows] == [
        (37, 1, True),
        (100, 1, True),
        (1000, 10, True),
        (500, 1, True),
        (100, 1, False),
        (1000, 10, False),
    ]
    for r in rows:
        assert r["ok"], r["problems"]
        assert r["pages"] <= r["item_requests"] <= r["requests"]
        assert r["client_requests"] >= r["pages"]

    (mem,) = results["memory"]["runs"]
    assert mem["ok"], mem["problems"]
    assert mem["count"] == 300
    assert mem["above_baseline_mib"] >= 0
    assert mem["peak_mib"] >= mem["baseline_mib"] > 0

    (prof,) = results["cpu"]["rows"]
    assert prof["correct"]
    mine = prof["us_per_page"]["aiobatch"]
    assert mine["decode"] > 0
    assert mine["duplicate check"] > 0
    assert mine["total"] > 0  # getrusage: coarse on a scan this small, so no sums
    assert set(prof["us_per_page"]["bare"]) == {"total", "decode", "rest"}
    assert prof["us_per_page"]["aiobatch+hooks"]["total"] > 0  # observed: the same scan
    layers = prof["layers_us_per_page"]
    assert layers["aiobatch"]["planner"] > 0
    assert layers["aiobatch"]["duplicate check"] > 0
    assert layers["bare"]["planner"] == 0

    (wave,) = results["first_wave"]["cells"]
    assert wave["correct"]
    assert set(wave["items_per_s"]) == {"cold", "known", "bare"}

    assert results["correctness_failures"] == []
    statuses = {t["name"]: t["status"] for t in results["targets"]}
    # 2 decode; scan: 2 vs the SDK, 12 vs bare, 2 CPU, 1 defaults, 8 no total, 6 item by
    # item; 1 first wave; 6 requests; 1 memory
    assert len(statuses) == 2 + 2 + 12 + 2 + 1 + 8 + 6 + 1 + 6 + 1
    measured = {n for n, s in statuses.items() if s != "N/A"}
    # Measured here: 0 ms, page 100, c=16 only (no 50 ms, no page 1000, no c=32).
    assert sorted(
        n.split(":")[0]
        for n in measured
        if not n.startswith(("decode", "req", "mem")) and "size known" not in n
    ) == [
        "client CPU per 1M items, 0 ms, page 100, c=16",
        "item by item, 0 ms, page 100, c=16",
        "scan 0 ms, page 100, c=16",  # vs the bare loop
        "scan 0 ms, page 100, c=16",  # vs the SDK
    ]
    assert sum(n.startswith("requests") for n in measured) == 6
    assert sum("size known" in n for n in measured) == 1
    text = render(results)
    assert "PASS  correctness" in text
    assert "cpu/1M" in text
    assert "NO OPTIONS" in text
    assert "REQUESTS PER SCAN" in text
    assert "FIRST WAVE" in text
    assert "WHERE THE CLIENT CPU GOES" in text

    written = write(results, TINY, tmp_path)
    assert {p.name for p in written} == {"smoke.json", "scan-smoke.png", "summary-smoke.md"}
    assert json.loads((tmp_path / "smoke.json").read_text())["mode"] == "smoke"
    assert (tmp_path / "scan-smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "summary-smoke.md").read_text()
    assert "| target |" in md
    assert "**Client CPU**" in md
    assert "**No options at all**" in md
    assert "**Requests per scan**" in md
    assert "**The first round trip**" in md
    assert "**Where the client CPU goes**" in md


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


async def test_slow_consumer_memory_runs_and_reports() -> None:
    plan = SlowConsumerPlan(items=(300, 900), page_size=100, concurrency=2, sleep_per_page_s=0.001)
    slow = await run_slow_memory(plan, inprocess_server)
    assert [r["total"] for r in slow["runs"]] == [300, 900]
    for r in slow["runs"]:
        assert r["ok"], r["problems"]
        assert r["sleep_per_page_s"] == 0.001
        assert r["above_baseline_mib"] >= 0
    assert slow["decoded_page_bytes"] > slow["page_body_bytes"] > 0
    results: dict[str, Any] = {
        "mode": "smoke",
        "env": {"python": "3", "cpu_usable": 1, "git_sha": "x", "git_dirty": False},
        "memory": {"items": 0, "page_size": 100, "runs": [], "slow": slow},
    }
    results["env"] |= {"packages": {}, "time": "now"}
    results["targets"] = [t.as_dict() for t in targets(results)]
    # one bound per job size, and the growth from the small job to the large one
    assert len(results["targets"]) == 3
    assert all(t["status"] in ("PASS", "MISS") for t in results["targets"])
    assert "slow consumer" in render(results)
    assert "**Memory, slow consumer**" in summary_markdown(results)


def test_request_budget_and_target_ops() -> None:
    assert [pages_of(n, 100) for n in (0, 37, 100, 101, 100_000)] == [1, 1, 1, 2, 1000]
    assert [request_budget(p) for p in (1, 10, 1000)] == [2, 12, 1002]
    assert Target("t", 1.2, 1.2, "<=", "×").status == "PASS"
    assert Target("t", 1.2, 1.2, "<", "×").status == "MISS"
    assert "≤ 1.2×" in Target("t", 1.0, 1.2, "<=", "×").line()
    assert Target("t", 0.9454, 0.95, ">=", "×").got == "0.945×"  # not "0.95×" and MISS
    assert Target("t", 1001, 1002, "<=", "").got == "1,001"

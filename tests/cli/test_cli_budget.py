"""``--max-concurrency`` and ``--rate-limit``: the client's request budget, as
global options of every command."""

from __future__ import annotations

import pytest
from cli_support import clear_env, cli

from aiobatch.testing import Faults, SimJob, Simulator


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


async def test_max_concurrency_bounds_every_request() -> None:
    job = SimJob(job_id="bjb-cli-budget", total_items=3000)
    async with Simulator(jobs=[job], faults=Faults(latency_ms=2)) as sim:
        argv = ["items", "list", "--job-id", job.job_id, "--page-size", "100", "--format", "jsonl"]
        r = await cli("--max-concurrency", "3", *argv, "--concurrency", "16", sim=sim)
        assert r.code == 0
        assert len(r.lines()) == 3000
        assert sim.stats.peak_in_flight <= 3
        sim.reset_stats()
        r = await cli(*argv, "--rate-limit", "1000", "--max-concurrency", "2", sim=sim)
        assert r.code == 0
        assert sim.stats.peak_in_flight <= 2


@pytest.mark.parametrize("bad", [["--rate-limit", "0"], ["--max-concurrency", "0"]])
async def test_bad_budgets_are_usage_errors(bad: list[str]) -> None:
    r = await cli(*bad, "jobs", "list", "--api-key", "k")
    assert r.code == 2

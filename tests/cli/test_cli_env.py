"""The CLI reads the library's environment variables (``LLAMA_CLOUD_...``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from cli_support import clear_env, cli

from aiobatch.testing import SimJob, Simulator


@pytest.fixture
def restore_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    clear_env(monkeypatch)
    logger = logging.getLogger("aiobatch")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


async def test_the_cli_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, restore_logger: logging.Logger
) -> None:
    async with Simulator(jobs=[SimJob(job_id="bjb-env", total_items=30)]) as sim:
        monkeypatch.setenv("LLAMA_CLOUD_TIMEOUT", "never")
        bad = await cli("items", "list", "--job-id", "bjb-env", sim=sim)
        monkeypatch.delenv("LLAMA_CLOUD_TIMEOUT")
        monkeypatch.setenv("LLAMA_CLOUD_LOG", "debug")
        monkeypatch.setenv("LLAMA_CLOUD_PAGE_SIZE", "10")
        ok = await cli("items", "list", "--job-id", "bjb-env", sim=sim)
    assert bad.code != 0
    assert "LLAMA_CLOUD_TIMEOUT" in bad.err
    assert ok.code == 0
    assert len(ok.lines()) == 30
    # Debug lines on stderr, through the CLI's handler: three pages of 10 (and
    # the page that proves the end), never the key.
    http = [line for line in ok.err.splitlines() if "aiobatch.http" in line]
    assert len(http) >= 3
    assert all("limit=10" in line or "/items" in line for line in http)
    assert str(sim.api_key) not in ok.err

"""Configuration from the environment (``LLAMA_CLOUD_...``): read by the library
and the CLI, arguments winning, a bad value named."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import API_KEY
from test_config import resolve as resolve_config

from aiobatch import BatchClient, ConfigurationError, RetryPolicy, Timeout
from aiobatch._config import ClientConfig
from aiobatch._logs import apply_log_env
from aiobatch.testing import SimJob, Simulator

pytestmark = pytest.mark.usefixtures("no_env")


def resolve(env: dict[str, str], **kw: Any) -> ClientConfig:
    return resolve_config(api_key=API_KEY, env=env, **kw)


@pytest.fixture
def restore_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("aiobatch")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


def test_timeout_and_retries_from_the_environment() -> None:
    env = {"LLAMA_CLOUD_TIMEOUT": "12.5", "LLAMA_CLOUD_MAX_RETRIES": "2"}
    config = resolve(env)
    assert config.timeout.total == 12.5
    assert config.retry.max_retries == 2


def test_arguments_win_over_the_environment() -> None:
    env = {"LLAMA_CLOUD_TIMEOUT": "12.5", "LLAMA_CLOUD_MAX_RETRIES": "2"}
    config = resolve(env, timeout=3, max_retries=7)
    assert (config.timeout.total, config.retry.max_retries) == (3.0, 7)
    assert resolve(env, timeout=Timeout(total=4)).timeout.total == 4
    # A policy passed in says how often to retry.
    assert resolve(env, retry=RetryPolicy(max_retries=9)).retry.max_retries == 9


def test_scan_defaults_from_the_environment() -> None:
    env = {"LLAMA_CLOUD_PAGE_SIZE": "250", "LLAMA_CLOUD_SCAN_CONCURRENCY": "3"}
    defaults = resolve(env).scan_defaults
    assert (defaults.page_size, defaults.concurrency) == (250, 3)
    plain = resolve({}).scan_defaults
    assert (plain.page_size, plain.concurrency) == (500, 8)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LLAMA_CLOUD_TIMEOUT", "soon"),
        ("LLAMA_CLOUD_TIMEOUT", "0"),
        ("LLAMA_CLOUD_TIMEOUT", "inf"),
        ("LLAMA_CLOUD_MAX_RETRIES", "-1"),
        ("LLAMA_CLOUD_MAX_RETRIES", "2.5"),
        ("LLAMA_CLOUD_PAGE_SIZE", "0"),
        ("LLAMA_CLOUD_SCAN_CONCURRENCY", "5000"),
        ("LLAMA_CLOUD_LOG", "verbose"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        resolve({name: value})


def test_the_key_never_shows_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve({"LLAMA_CLOUD_TIMEOUT": API_KEY})
    assert API_KEY not in str(info.value)
    assert "30-character value" in str(info.value)


def test_log_level_from_the_environment(restore_logger: logging.Logger) -> None:
    restore_logger.setLevel(logging.NOTSET)
    apply_log_env({"LLAMA_CLOUD_LOG": "INFO"})
    assert restore_logger.level == logging.INFO
    apply_log_env({})  # unset: left as it is
    assert restore_logger.level == logging.INFO


async def test_an_item_scan_uses_the_environment_page_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_PAGE_SIZE", "40")
    sim = Simulator(jobs=[SimJob(job_id="bjb-env", total_items=100)])
    async with sim, BatchClient(api_key=sim.api_key, base_url=sim.base_url) as c:
        pages = [p async for p in c.job_items.iter_pages("bjb-env")]
        wide = [p async for p in c.job_items.iter_pages("bjb-env", page_size=100)]
    assert [len(p.items) for p in pages] == [40, 40, 20]
    assert [len(p.items) for p in wide] == [100]


async def test_the_item_scan_under_a_results_stream_uses_it_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_PAGE_SIZE", "40")
    sim = Simulator(jobs=[SimJob(job_id="bjb-env", total_items=100, seed=3)])
    async with sim, BatchClient(api_key=sim.api_key, base_url=sim.base_url) as c:
        got = [r async for r in c.job_items.iter_results("bjb-env", status=None)]
        listing = {r.query.get("limit", "0") for r in sim.stats.log if r.path.endswith("/items")}
        sim.reset_stats()
        [r async for r in c.job_items.iter_results("bjb-env", status=None, page_size=100)]
        wide = {r.query.get("limit", "0") for r in sim.stats.log if r.path.endswith("/items")}
    assert len(got) == 100
    assert max(int(limit) for limit in listing) == 40
    assert max(int(limit) for limit in wide) == 100  # the argument wins

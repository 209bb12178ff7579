"""Every fault test runs under two guards (case 24 and case 20 of the suite):

* logging is captured at DEBUG for every logger (aiobatch, aiohttp, asyncio),
  and the API key must not appear in any record;
* the event loop's exception handler records what asyncio would print
  ("Task exception was never retrieved", "Unclosed client session"...), and
  there must be none once the test is over.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .fault_support import KEY


@pytest_asyncio.fixture(autouse=True)
async def _guards(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    import asyncio

    caplog.set_level(logging.DEBUG)
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        yield
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    leaks = [r.getMessage() for r in caplog.records if KEY in r.getMessage()]
    leaks += [caplog.text] if KEY in caplog.text else []
    assert leaks == [], "the API key reached the logs"
    assert [e.get("message") for e in errors] == [], errors


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

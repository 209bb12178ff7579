"""Guards every fault test runs under (case 24, and the hygiene of case 20):

* logging is captured at DEBUG for every logger (aiobatch, aiohttp, asyncio),
  and the API key must not appear in any record;
* every ``AiobatchError`` built during the test (raised, retried and swallowed,
  or chained) is walked at the end, attributes, ``__cause__`` and
  ``__context__`` included, and must not hold the key; neither may the
  ``repr``/``str`` of any ``BatchClient`` the test built;
* the event loop's exception handler records what asyncio would print
  ("Task exception was never retrieved", "Unclosed client session"...), and
  there must be none once the test is over.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aiobatch import AiobatchError, BatchClient

from .fault_support import KEY, find_secret


@pytest_asyncio.fixture(autouse=True)
async def _guards(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    caplog.set_level(logging.DEBUG)
    errors_built: list[AiobatchError] = []
    clients_built: list[BatchClient] = []
    client_init = BatchClient.__init__

    def record_error(self: AiobatchError, *args: Any) -> None:
        Exception.__init__(self, *args)
        errors_built.append(self)

    def record_client(self: BatchClient, *args: Any, **kw: Any) -> None:
        client_init(self, *args, **kw)
        clients_built.append(self)

    monkeypatch.setattr(AiobatchError, "__init__", record_error)
    monkeypatch.setattr(BatchClient, "__init__", record_client)

    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    try:
        yield
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)

    assert KEY not in caplog.text, "the API key reached the logs"
    assert [r for r in caplog.records if KEY in r.getMessage()] == []
    leaks = {f"{type(e).__name__}: {where}" for e in errors_built for where in find_secret(e)}
    assert leaks == set(), "the API key is held by an exception"
    for client in clients_built:
        assert KEY not in repr(client)
        assert KEY not in str(client)
    assert [e.get("message") for e in loop_errors] == [], loop_errors


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

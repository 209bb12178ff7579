"""Shared fixtures, and the aioresponses shim.

aioresponses 0.7.9 against aiohttp 3.14
----------------------------------------
aioresponses builds its fake ``ClientResponse`` objects by hand
(``aioresponses.core.RequestMatch._build_response``), and two things in that
builder no longer fit aiohttp 3.14:

1. ``ClientResponse.__init__`` gained a required keyword-only ``stream_writer``
   (it reads ``stream_writer.output_size`` when ``writer`` is None, i.e. when the
   request is already sent).  aioresponses does not pass it, so every mocked
   request fails with ``TypeError: ... missing ... 'stream_writer'``.
2. The body is pushed into a ``StreamReader`` built with ``limit=2**16`` on a
   protocol that has no parser.  A body above twice that limit (128 KiB) makes
   the reader call ``protocol.pause_reading()``, which asserts
   ``self._parser is not None``; bodies over 64 KiB are therefore unsafe.

The shim below (installed once, when this conftest is imported, so every use of
aioresponses in the suite gets it) fixes both without pinning aiohttp lower:

* ``aioresponses.core.ClientResponse`` (the class the builder falls back to) is
  replaced by a subclass whose ``stream_writer`` defaults to a finished writer
  (``output_size == 0``);
* ``aioresponses.core.stream_reader_factory`` returns a reader whose flow-control
  window is larger than any body a test feeds it, so it never pauses;
* the builder is wrapped to add ``Content-Length`` (what every real server sends
  for a fixed body) unless the test set its own framing headers.  Without it
  aiohttp reports no length and the transport cannot tell a complete body from a
  truncated one.

Even so, keep aioresponses for small bodies (request shape, error mapping) and
use the loopback servers in ``tests/_servers.py`` for anything about bodies,
framing or sockets: aioresponses never exercises aiohttp's parser.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from typing import Any

import aioresponses.core as _ar_core
import pytest
from _servers import RecordingSleep
from aiohttp import ClientResponse, StreamReader, hdrs
from aiohttp.client_proto import ResponseHandler
from aioresponses import aioresponses as _aioresponses

from aiobatch import BatchClient, RetryPolicy
from aiobatch._config import ENV_VARS

API_KEY = "llx-test-SECRET-key-0123456789"
BASE_URL = "https://api.test.invalid"
API = "/api/v1/beta/batch-processing"


# --- the aioresponses shim ------------------------------------------------------


class _SentWriter:
    """Stands in for the stream writer of a request that has been fully sent."""

    output_size = 0


class _CompatClientResponse(ClientResponse):
    def __init__(self, method: str, url: Any, *, stream_writer: Any = None, **kw: Any) -> None:
        writer: Any = _SentWriter() if stream_writer is None else stream_writer
        super().__init__(method, url, stream_writer=writer, **kw)


def _roomy_stream_reader(loop: asyncio.AbstractEventLoop | None = None) -> StreamReader:
    return StreamReader(ResponseHandler(loop=loop), limit=2**30, loop=loop)  # type: ignore[arg-type]


def _with_content_length(build: Any) -> Any:
    @functools.wraps(build)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> ClientResponse:
        resp: ClientResponse = build(self, *args, **kwargs)
        headers = resp._headers
        if hdrs.CONTENT_LENGTH not in headers and hdrs.TRANSFER_ENCODING not in headers:
            headers[hdrs.CONTENT_LENGTH] = str(resp.content.total_bytes)  # type: ignore[index]
        return resp

    wrapper.__aiobatch_shim__ = True  # type: ignore[attr-defined]
    return wrapper


def install_aioresponses_shim() -> None:
    """Idempotent: make aioresponses 0.7.9 build responses aiohttp 3.14 accepts."""
    _ar_core.ClientResponse = _CompatClientResponse  # type: ignore[attr-defined]
    _ar_core.stream_reader_factory = _roomy_stream_reader  # type: ignore[attr-defined]
    build = _ar_core.RequestMatch._build_response
    if not getattr(build, "__aiobatch_shim__", False):
        _ar_core.RequestMatch._build_response = _with_content_length(build)  # type: ignore[method-assign]


install_aioresponses_shim()


@pytest.fixture
def aioresponses() -> Iterator[_aioresponses]:
    """An active aioresponses mock (with the shim above)."""
    with _aioresponses() as mocked:
        yield mocked


# --- common fixtures ------------------------------------------------------------


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def policy(sleeps: RecordingSleep) -> RetryPolicy:
    """Retry policy with no jitter and no real sleeping."""
    return RetryPolicy(sleep=sleeps, random=lambda: 0.0)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide any API key / base URL / tuning the developer's shell may export."""
    for name in ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL", *ENV_VARS):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_client(policy: RetryPolicy, no_env: None) -> Callable[..., BatchClient]:
    """Build (not open) a client on BASE_URL with the recording policy.

    Not an async fixture holding an open client: ``BatchClient.__aenter__``
    enters an anyio task group, which must be exited by the task that entered
    it, and pytest-asyncio runs fixture setup and teardown in different tasks.
    Tests therefore open the client themselves with ``async with``.
    """

    def build(**kw: Any) -> BatchClient:
        kw.setdefault("base_url", BASE_URL)
        kw.setdefault("retry", policy)
        return BatchClient(kw.pop("api_key", API_KEY), **kw)

    return build


# The installed package also registers this plugin (pytest11 entry point) under
# this very name, so pytest loads it once either way; the line keeps the suite
# working where entry points are not loaded (PYTEST_DISABLE_PLUGIN_AUTOLOAD, or
# an environment installed before the entry point existed).
pytest_plugins = ["aiobatch.testing.pytest_plugin"]

"""Raw HTTP helpers for the simulator tests: no client library between the test
and the bytes, so framing faults are seen exactly as sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from aiobatch.testing import Simulator

API = "/api/v1/beta/batch-processing"


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def session(
    sim: Simulator, *, key: str | None = "default", fresh: bool = False
) -> aiohttp.ClientSession:
    """A session on the simulator; ``fresh`` opens a new connection per request
    (aiohttp silently retries an idempotent request once when a *reused*
    keep-alive connection is dropped, which would hide connection faults)."""
    headers = (
        {}
        if key is None
        else {"Authorization": f"Bearer {sim.api_key if key == 'default' else key}"}
    )
    connector = aiohttp.TCPConnector(force_close=fresh)
    return aiohttp.ClientSession(sim.base_url, headers=headers, connector=connector)


async def call(
    s: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
    data: bytes | None = None,
) -> Reply:
    kwargs: dict[str, Any] = {"params": {k: str(v) for k, v in (params or {}).items()}}
    if body is not None:
        kwargs["data"] = msgspec.json.encode(body)
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif data is not None:
        kwargs["data"] = data
    async with s.request(method, API + path, **kwargs) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


async def get(sim: Simulator, path: str, **params: Any) -> Reply:
    async with session(sim) as s:
        return await call(s, "GET", path, params=params)


async def post(sim: Simulator, path: str, body: Any = None, *, data: bytes | None = None) -> Reply:
    async with session(sim) as s:
        return await call(s, "POST", path, body=body, data=data)

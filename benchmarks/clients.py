"""The clients raced in the end-to-end scans, each consuming a whole job.

* ``aiobatch``: ``client.job_items.iter_pages`` (the library under test);
* ``aiobatch-iter``: the same scan item by item (``client.job_items.iter``), the
  consumer tallying every ``page_size`` items as one page (the same tally work);
* ``aiobatch-defaults``: the same with no scan options at all (its default page
  size and concurrency), as a user who passes nothing gets it;
* ``sdk-httpx`` / ``sdk-aiohttp``: the official SDK's auto-pagination
  (``async for item in client.beta.batch.job_items.list(...)``), one page after
  the other, with its default httpx transport and with ``DefaultAioHttpClient``;
* ``bare``: the floor -- aiohttp + ``msgspec.json.decode`` to built-ins, offsets
  computed up front from the known total, ``asyncio.gather`` bounded by a
  semaphore.  It knows the job size in advance and checks nothing, which no
  real client can afford: it is the bound, not a competitor.

Every consumer reports what it got to a ``Tally`` (first/last id of each page,
or every id for the item-by-item SDK): cheap, and a wrong client fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec
from yarl import URL

from aiobatch import BatchClient, ScanOptions

from ._bodies import Tally

__all__ = ["API", "CLIENTS", "DEFAULTS", "Client", "Endpoint"]

API = "/api/v1/beta/batch-processing"
#: What a scan without options uses (page size, concurrency).
DEFAULTS = ScanOptions()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A simulator serving one job of ``total`` items."""

    base_url: str
    api_key: str
    job_id: str
    total: int
    #: The server's process id (None: it runs in this process).
    pid: int | None = None


#: scan(endpoint, page_size, concurrency, tally): consume the whole job.
ScanFn = Callable[[Endpoint, int, int, Tally], Awaitable[None]]
#: warm(endpoint, page_size): one page through the same code path, untimed.
WarmFn = Callable[[Endpoint, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    label: str
    scan: ScanFn
    warm: WarmFn
    #: None: runs at every concurrency of the plan.  Else it runs once per page-size
    #: group at this concurrency, whatever the plan says: 1 for the SDK (one page
    #: after the other), the library's default for ``aiobatch-defaults``.
    fixed_concurrency: int | None = None


# --- aiobatch -------------------------------------------------------------------


async def scan_aiobatch(ep: Endpoint, page_size: int, concurrency: int, tally: Tally) -> None:
    async with BatchClient(api_key=ep.api_key, base_url=ep.base_url) as client:
        pages = client.job_items.iter_pages(ep.job_id, page_size=page_size, concurrency=concurrency)
        async for page in pages:
            items = page.items
            if items:
                tally.page(items[0].item_id, items[-1].item_id, len(items))


async def scan_aiobatch_iter(ep: Endpoint, page_size: int, concurrency: int, tally: Tally) -> None:
    async with BatchClient(api_key=ep.api_key, base_url=ep.base_url) as client:
        items = client.job_items.iter(ep.job_id, page_size=page_size, concurrency=concurrency)
        n, first, last = 0, "", ""
        async for item in items:
            last = item.item_id
            if not n:
                first = last
            n += 1
            if n == page_size:
                tally.page(first, last, n)
                n = 0
        if n:
            tally.page(first, last, n)


async def scan_aiobatch_defaults(
    ep: Endpoint, page_size: int, concurrency: int, tally: Tally
) -> None:
    """No options at all: ``page_size`` and ``concurrency`` are ignored."""
    async with BatchClient(api_key=ep.api_key, base_url=ep.base_url) as client:
        async for page in client.job_items.iter_pages(ep.job_id):
            items = page.items
            if items:
                tally.page(items[0].item_id, items[-1].item_id, len(items))


async def warm_aiobatch(ep: Endpoint, page_size: int) -> None:
    async with BatchClient(api_key=ep.api_key, base_url=ep.base_url) as client:
        await client.job_items.list(ep.job_id, limit=page_size, offset=0)


# --- the official SDK ---------------------------------------------------------------


def _sdk_scan(transport: str) -> ScanFn:
    async def scan(ep: Endpoint, page_size: int, concurrency: int, tally: Tally) -> None:
        from ._sdk import make_client

        async with make_client(ep.base_url, ep.api_key, transport) as client:
            async for item in client.beta.batch.job_items.list(job_id=ep.job_id, limit=page_size):
                tally.item(item.item_id)

    return scan


def _sdk_warm(transport: str) -> WarmFn:
    async def warm(ep: Endpoint, page_size: int) -> None:
        from ._sdk import make_client

        async with make_client(ep.base_url, ep.api_key, transport) as client:
            page = await client.beta.batch.job_items.list(job_id=ep.job_id, limit=page_size)
            assert page.items

    return warm


# --- the floor: a bare aiohttp + msgspec loop --------------------------------------


def _page_urls(ep: Endpoint, page_size: int) -> list[URL]:
    base = f"{ep.base_url}{API}/{quote(ep.job_id, safe='')}/items?limit={page_size}&offset="
    return [URL(f"{base}{offset}", encoded=True) for offset in range(0, ep.total, page_size)]


async def scan_bare(
    ep: Endpoint,
    page_size: int,
    concurrency: int,
    tally: Tally,
    decode: Callable[[bytes], Any] = msgspec.json.decode,
) -> None:
    urls = _page_urls(ep, page_size)
    got: list[tuple[int, str, str]] = [(0, "", "")] * len(urls)
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {ep.api_key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def fetch(k: int, url: URL) -> None:
            async with gate, session.get(url) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"GET {url} -> {resp.status}")
                body = await resp.read()
            items = decode(body)["items"]
            if items:
                got[k] = (len(items), items[0]["item_id"], items[-1]["item_id"])

        await asyncio.gather(*(fetch(k, url) for k, url in enumerate(urls)))
    for n, first, last in got:
        tally.page(first, last, n)


async def warm_bare(ep: Endpoint, page_size: int) -> None:
    await scan_bare(
        Endpoint(ep.base_url, ep.api_key, ep.job_id, min(ep.total, page_size)),
        page_size,
        1,
        Tally(lambda i: "", min(ep.total, page_size)),
    )


CLIENTS: dict[str, Client] = {
    c.name: c
    for c in (
        Client("aiobatch", "aiobatch iter_pages", scan_aiobatch, warm_aiobatch),
        Client("aiobatch-iter", "aiobatch iter, item by item", scan_aiobatch_iter, warm_aiobatch),
        Client(
            "aiobatch-defaults",
            f"aiobatch iter_pages, no options (page {DEFAULTS.page_size}, "
            f"c={DEFAULTS.concurrency})",
            scan_aiobatch_defaults,
            warm_aiobatch,
            fixed_concurrency=DEFAULTS.concurrency,
        ),
        Client("bare", "bare aiohttp+msgspec loop (floor)", scan_bare, warm_bare),
        Client(
            "sdk-httpx",
            "llama-cloud SDK (httpx)",
            _sdk_scan("httpx"),
            _sdk_warm("httpx"),
            fixed_concurrency=1,
        ),
        Client(
            "sdk-aiohttp",
            "llama-cloud SDK (aiohttp)",
            _sdk_scan("aiohttp"),
            _sdk_warm("aiohttp"),
            fixed_concurrency=1,
        ),
    )
}

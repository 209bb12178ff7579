"""The official SDK (``llama-cloud``), used as the baseline.

``response_parser`` reproduces, on given bytes, exactly what the SDK does with
every page of ``client.beta.batch.job_items.list(...)``:

1. ``AsyncAPIClient._process_response`` (``llama_cloud/_base_client.py``) wraps the
   ``httpx.Response`` in an ``AsyncAPIResponse`` and awaits its ``parse()``;
2. ``AsyncAPIResponse.parse`` -> ``BaseAPIResponse._parse`` (``_response.py``)
   checks the content type and calls ``httpx.Response.json()`` (stdlib
   ``json.loads``), then ``BaseClient._process_response_data``, which -- with the
   default ``_strict_response_validation=False`` -- calls
   ``_models.construct_type(type_=AsyncPaginatedBatchItems[JobItemListResponse],
   value=data)``: pydantic ``construct`` of the page and of every item (datetimes
   parsed one by one);
3. the paginator's ``post_parser`` (``AsyncPaginator._get_page``) attaches the
   client, model and options to the page (``_set_private_attributes``).

We build the same ``AsyncAPIResponse`` and call its real ``parse()``; only the
network read is skipped (the body is already in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from llama_cloud import AsyncLlamaCloud, DefaultAioHttpClient
from llama_cloud._models import FinalRequestOptions
from llama_cloud._response import AsyncAPIResponse
from llama_cloud.pagination import AsyncPaginatedBatchItems
from llama_cloud.types.beta.batch import JobItemListResponse

__all__ = ["PAGE_TYPE", "make_client", "response_parser"]

PAGE_TYPE: Any = AsyncPaginatedBatchItems[JobItemListResponse]
_PATH = "/api/v1/beta/batch-processing/bjb-bench/items"


def make_client(base_url: str, api_key: str, transport: str) -> AsyncLlamaCloud:
    """The SDK's async client with its default httpx transport, or ``"aiohttp"``
    (``DefaultAioHttpClient``: the ``llama-cloud[aiohttp]`` extra, httpx-aiohttp)."""
    if transport == "aiohttp":
        return AsyncLlamaCloud(
            api_key=api_key, base_url=base_url, http_client=DefaultAioHttpClient()
        )
    if transport != "httpx":
        raise ValueError(f"unknown SDK transport {transport!r}")
    return AsyncLlamaCloud(api_key=api_key, base_url=base_url)


def _run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    # parse() only awaits `response.aread()`, which returns at once when the body
    # is already in memory: drive the coroutine without an event loop.
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the SDK's parse() suspended: it is not CPU-only any more")


def response_parser(client: AsyncLlamaCloud, body: bytes, limit: int) -> Callable[[], Any]:
    """A fresh, ready-to-run SDK parse of ``body`` (build it outside the timed
    region: ``parse()`` caches its result, so each run needs a new response)."""
    options = FinalRequestOptions.construct(
        method="get", url=_PATH, params={"limit": limit, "offset": 0}
    )

    def post_parser(page: Any) -> Any:  # AsyncPaginator._get_page's _parser
        page._set_private_attributes(model=JobItemListResponse, options=options, client=client)
        return page

    options.post_parser = post_parser
    request = httpx.Request("GET", "http://sdk.invalid" + _PATH)
    raw = httpx.Response(
        200,
        content=body,
        headers={"content-type": "application/json", "content-length": str(len(body))},
        request=request,
    )
    response: AsyncAPIResponse[Any] = AsyncAPIResponse(
        raw=raw,
        client=client,
        cast_to=PAGE_TYPE,
        stream=False,
        stream_cls=None,
        options=options,
        retries_taken=0,
    )
    return lambda: _run_sync(response.parse())

"""``aiobatch.testing.MockTransport``: a user's unit tests with no server."""

from __future__ import annotations

import json

import pytest

from aiobatch import BatchClient, ClientClosedError, NotFoundError, Response
from aiobatch.testing import MockRequest, MockTransport

ITEMS = [{"item_id": f"it-{i}", "item_name": f"f{i}.pdf", "status": "completed"} for i in range(7)]


def listing(request: MockRequest) -> Response:
    """Offset pages of ``ITEMS``, as the API serves ``GET /{job_id}/items``."""
    assert request.method == "GET"
    assert request.path.endswith("/bjb-1/items")
    offset = int(str(request.params.get("offset", "0")))
    limit = int(str(request.params["limit"]))
    page = {"items": ITEMS[offset : offset + limit], "total_size": len(ITEMS)}
    return Response(200, {"Content-Type": "application/json"}, json.dumps(page).encode())


async def test_a_scan_runs_over_a_handler() -> None:
    async with BatchClient(api_key="k", transport=MockTransport(listing)) as client:
        got = [item.item_id async for item in client.job_items.iter("bjb-1", page_size=3)]
    assert got == [item["item_id"] for item in ITEMS]


async def test_an_async_handler_and_error_mapping() -> None:
    seen: list[MockRequest] = []

    async def missing(request: MockRequest) -> Response:
        seen.append(request)
        body = json.dumps({"detail": "job not found"}).encode()
        return Response(404, {"content-type": "application/json"}, body)

    async with BatchClient(api_key="k", transport=MockTransport(missing)) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.jobs.get("bjb-gone")
    assert caught.value.status_code == 404
    assert len(seen) == 1
    assert seen[0].path.endswith("/bjb-gone")


async def test_a_handler_that_returns_the_wrong_thing_is_named() -> None:
    transport = MockTransport(lambda request: {"status": 200})  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"must return aiobatch\.Response, got dict"):
        await transport.send("GET", "/x", params={}, body=None)


async def test_a_closed_transport_refuses() -> None:
    transport = MockTransport(listing)
    await transport.aclose()
    with pytest.raises(ClientClosedError):
        await transport.send("GET", "/bjb-1/items", params={"limit": "1"}, body=None)


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="handler must be callable"):
        MockTransport("nope")  # type: ignore[arg-type]

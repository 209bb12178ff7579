"""Declared endpoints: one engine for every paged listing, in both pagination
styles, every form taking the same options; the cursor style proved on the
simulator's token-paged item listing."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from aiobatch import BatchClient, PageFetchError, PaginationError, RetryPolicy, ScanOptions
from aiobatch import _protocol as proto
from aiobatch._paging import Endpoint, Resolved, start_scan
from aiobatch.models import BatchItem, BatchItemListResponse
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

JOB = "bjb-declared"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        jobs=[SimJob(job_id=JOB, total_items=2_345, seed=4)],
        faults=Faults(next_page_token=True),
    ) as s:
        yield s


@pytest.fixture
def client_for(policy: RetryPolicy) -> Callable[..., BatchClient]:
    def build(s: Simulator) -> BatchClient:
        return BatchClient(api_key=s.api_key, base_url=s.base_url, retry=policy)

    return build


def cursor_items(
    token_of: Callable[[BatchItemListResponse], str | None] = operator.attrgetter(
        "next_page_token"
    ),
) -> Endpoint[BatchItemListResponse, BatchItem]:
    """The item listing declared as a cursor-paged endpoint: the whole cost of a
    new paged endpoint is a declaration like this one."""
    return Endpoint(
        path=proto.path("/{job_id}/items", job_id=JOB),
        page=BatchItemListResponse,
        items=operator.attrgetter("items"),
        key=operator.attrgetter("item_id"),
        total=operator.attrgetter("total_size"),
        next_token=token_of,
    )


def scan(client: BatchClient, endpoint: Endpoint[Any, BatchItem], **kw: Any) -> Any:
    api = client.jobs._api  # the private seam a resource would use

    async def resolve() -> Resolved[BatchItem]:
        return Resolved({})

    return start_scan(endpoint, resolve, ScanOptions(**kw), api, api.spawn)


def tokens_sent(s: Simulator) -> list[str | None]:
    return [r.query.get("page_token") for r in s.stats.log if r.path.endswith("/items")]


async def test_a_cursor_listing_delivers_every_item_in_order(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    async with client_for(sim) as c:
        pages = scan(c, cursor_items(), page_size=100)
        got = [i.item_id async for p in pages for i in p.items]
    assert got == sim.item_ids(JOB)
    sent = tokens_sent(sim)
    assert sent[0] is None
    assert len(sent) == 24  # sequential: one request per page
    assert len(set(sent[1:])) == 23
    assert pages.progress.state == "finished"
    assert pages.progress.next_token is None


async def test_the_next_page_is_fetched_while_the_consumer_works(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    async with client_for(sim) as c:
        pages = scan(c, cursor_items(), page_size=100)
        async with pages:
            first = await pages.__anext__()
            with anyio.fail_after(5):
                while sim.stats.requests < 2:  # the consumer holds page 1...
                    await anyio.sleep(0.01)
            assert first.next_token is not None  # ...page 2 is already on its way


async def test_a_cursor_scan_resumes_from_a_token(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    expected = sim.item_ids(JOB)
    async with client_for(sim) as c:
        got: list[str] = []
        items = scan(c, cursor_items(), page_size=100)
        async with items:
            async for page in items:
                got.extend(i.item_id for i in page.items)
                if len(got) == 500:
                    break
        token = items.progress.next_token
        assert token is not None
        rest = scan(c, cursor_items(), page_size=100, start_token=token)
        got += [i.item_id async for p in rest for i in p.items]
    assert got == expected


async def test_a_token_that_repeats_is_an_error_not_a_loop(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    first: list[str] = []

    def stuck(page: BatchItemListResponse) -> str | None:
        # A server that loops: it hands out its first token again and again.
        if page.next_page_token and not first:
            first.append(page.next_page_token)
        return first[0] if page.next_page_token else None

    async with client_for(sim) as c:
        got: list[str] = []
        with anyio.fail_after(10), pytest.raises(PaginationError, match="a second time"):
            async for page in scan(c, cursor_items(stuck), page_size=100):
                got.extend(i.item_id for i in page.items)
    assert got == sim.item_ids(JOB)[: len(got)]
    assert sim.stats.requests <= 3


async def test_cursor_pages_share_the_engine_retries_and_max_items(
    sim: Simulator, client_for: Callable[..., BatchClient], policy: RetryPolicy
) -> None:
    sim.faults = Faults(next_page_token=True, rate_limit=Trigger(every=3), retry_after="0")
    async with client_for(sim) as c:
        pages = scan(c, cursor_items(), page_size=100, max_items=450)
        got = [i.item_id async for p in pages for i in p.items]
    assert got == sim.item_ids(JOB)[:450]
    assert pages.progress.retries > 0
    assert tokens_sent(sim)[-1] is not None


async def test_a_cursor_page_that_fails_for_good_names_the_token_to_resume_from(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    sim.faults = Faults(next_page_token=True, server_error=Trigger(after=3, every=1))
    async with client_for(sim) as c:
        with pytest.raises(PageFetchError, match=r"resume with start_token='[^']+'") as info:
            async for _ in scan(c, cursor_items(), page_size=100):
                pass
    assert info.value.offset == 300


# --- every form takes the same options -----------------------------------------------------


async def test_every_form_takes_options_and_keywords_alike(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    expected = sim.item_ids(JOB)[:250]
    opts = ScanOptions(page_size=100, max_items=250)
    async with client_for(sim) as c:
        a = [i.item_id async for i in c.job_items.iter(JOB, options=opts)]
        b = [i.item_id async for i in c.job_items.iter(JOB, page_size=100, max_items=250)]
        c_ = [i.item_id async for p in c.job_items.iter_pages(JOB, options=opts) for i in p.items]
        async with c.job_items.scan(JOB, page_size=100, max_items=250) as pages:
            d = [i.item_id async for p in pages for i in p.items]
        # keywords win over options=
        e = [i.item_id async for i in c.job_items.iter(JOB, options=opts, max_items=10)]
        async with c.jobs.scan(page_size=1) as jobs:  # jobs has the structured form too
            f = [j.id async for p in jobs for j in p.items]
        with pytest.raises(TypeError, match="unknown scan option"):
            c.job_items.iter(JOB, pagesize=10)  # type: ignore[call-arg]
    assert a == b == c_ == d == expected
    assert e == expected[:10]
    assert f == [JOB]


async def test_the_client_keeps_its_internals_private(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    c = client_for(sim)
    for name in ("request", "scope", "spawn", "retry_policy"):
        assert not hasattr(c, name), name

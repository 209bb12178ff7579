"""``client.batches`` against the simulator: one-shot calls, the cursor listing in
every form, filters, resume, hostile cursors, retries and typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import anyio
import pytest

from aiobatch import (
    APIConnectionError,
    Batch,
    BatchClient,
    BatchStatus,
    NotFoundError,
    PaginationError,
    RateLimitError,
    RetryPolicy,
    ScanOptions,
    UnprocessableEntityError,
)
from aiobatch.testing import Faults, SimBatch, SimClock, Simulator, Trigger

T0 = 1_800_000_000.0
N = 57


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0)) as s:
        for i in range(N):
            s.batches.add(
                SimBatch(
                    batch_id=f"bat-{i:03d}",
                    created_at=T0 - 10_000 + i * 10,
                    source_directory_id="dir-even" if i % 2 == 0 else "dir-odd",
                    files=3,
                )
            )
        s.batches.add(SimBatch(batch_id="bat-live", created_at=T0, files=100))
        yield s


@pytest.fixture
def client_for(policy: RetryPolicy) -> Callable[[Simulator], BatchClient]:
    def build(s: Simulator) -> BatchClient:
        return BatchClient(api_key=s.api_key, base_url=s.base_url, retry=policy)

    return build


def v2_requests(s: Simulator) -> list[dict[str, str]]:
    return [r.query for r in s.stats.log if r.path == "/api/v2/batches" and r.method == "GET"]


async def test_every_batch_exactly_once_across_pages(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    expected = sim.batches.ids()
    assert len(expected) == N + 1
    async with client_for(sim) as c:
        got = [b.id async for b in c.batches.iter(page_size=10)]
        pages = c.batches.iter_pages(page_size=10)
        sizes = [len(p.items) async for p in pages]
        async with c.batches.scan(options=ScanOptions(page_size=25)) as scan:
            scanned = [b.id async for p in scan for b in p.items]
    assert got == expected
    assert scanned == expected
    assert sizes == [10] * 5 + [8]
    assert pages.progress.state == "finished"
    assert pages.progress.next_token is None
    sent = v2_requests(sim)[:6]
    assert [q["page_size"] for q in sent] == ["10"] * 6
    assert "page_token" not in sent[0]
    assert len({q["page_token"] for q in sent[1:]}) == 5


async def test_one_page_and_its_token(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    expected = sim.batches.ids()
    async with client_for(sim) as c:
        first = await c.batches.list(page_size=20)
        assert first.next_page_token
        second = await c.batches.list(page_size=20, page_token=first.next_page_token)
    assert [b.id for b in first.items + second.items] == expected[:40]
    assert isinstance(first.items[0], Batch)


async def test_filters_reach_the_server_and_match_ground_truth(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.advance(5)  # bat-live is RUNNING now, the others COMPLETED
    cut = datetime.fromtimestamp(T0 - 10_000 + 300, UTC)
    async with client_for(sim) as c:
        running = [b.id async for b in c.batches.iter(status="RUNNING")]
        even = [b.id async for b in c.batches.iter(source_directory_id="dir-even", page_size=7)]
        newer = [b.id async for b in c.batches.iter(created_at_on_or_after=cut, page_size=9)]
        older = [
            b.id
            async for b in c.batches.iter(
                created_at_on_or_before="2027-01-15T05:25:00Z", status=BatchStatus.COMPLETED
            )
        ]
    assert running == ["bat-live"]
    assert even == sim.batches.ids(source_directory_id="dir-even")
    assert len(even) == 29
    assert newer == sim.batches.ids(created_on_or_after=cut.timestamp())
    assert newer[-1] == "bat-030"
    assert older == sim.batches.ids(
        created_on_or_before=datetime(2027, 1, 15, 5, 25, tzinfo=UTC).timestamp()
    )
    assert older
    sent = v2_requests(sim)
    assert sent[0]["status"] == "RUNNING"
    assert sent[-1]["created_at_on_or_before"] == "2027-01-15T05:25:00Z"


async def test_a_scan_resumes_with_start_token(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    expected = sim.batches.ids()
    async with client_for(sim) as c:
        got: list[str] = []
        pages = c.batches.iter_pages(page_size=8)
        async with pages:
            async for page in pages:
                got += [b.id for b in page.items]
                if len(got) >= 24:
                    break
        token = pages.progress.next_token
        assert token is not None
        got += [b.id async for b in c.batches.iter(page_size=8, start_token=token)]
    assert got == expected


async def test_max_items_stops_early(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as c:
        got = [b.id async for b in c.batches.iter(page_size=10, max_items=15)]
    assert got == sim.batches.ids()[:15]
    assert [q["page_size"] for q in v2_requests(sim)] == ["10", "5"]


async def test_a_repeating_token_is_a_pagination_error(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(repeat_token=Trigger(after=2, first=1, on="batches"))
    got: list[str] = []
    async with client_for(sim) as c:
        with anyio.fail_after(10), pytest.raises(PaginationError, match="a second time"):
            async for b in c.batches.iter(page_size=10):
                got.append(b.id)
    assert got == sim.batches.ids()[: len(got)]
    assert len(v2_requests(sim)) == 3


async def test_a_token_that_leads_back_to_the_start_is_caught(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    # First page carries a token for the start of the listing: page 2 repeats page 1.
    sim.faults = Faults(repeat_token=Trigger(first=1, on="batches"))
    async with client_for(sim) as c:
        with pytest.raises(PaginationError, match="returned twice"):
            async for _ in c.batches.iter(page_size=10):
                pass


async def test_empty_pages_that_carry_a_token_are_followed(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(empty_token_page=Trigger(every=2, on="batches"))
    async with client_for(sim) as c:
        got = [b.id async for b in c.batches.iter(page_size=10)]
    assert got == sim.batches.ids()
    assert sim.stats.faults().count("empty_token_page") >= 5


async def test_endless_empty_pages_are_refused(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(empty_token_page=Trigger(after=1, every=1, on="batches"))
    async with client_for(sim) as c:
        with anyio.fail_after(20), pytest.raises(PaginationError, match="empty pages in a row"):
            async for _ in c.batches.iter(page_size=10):
                pass


async def test_429_and_5xx_are_retried_on_every_call(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(
        rate_limit=Trigger(every=3, on="*"),
        retry_after="0",
        server_error=Trigger(every=4, on="batches"),  # create is not retried after a 5xx
    )
    expected = sim.batches.ids()
    async with client_for(sim) as c:
        got = [b.id async for b in c.batches.iter(page_size=10)]
        one = await c.batches.get("bat-001", expand="results")
        cancelled = await c.batches.cancel("bat-live")
        made = await c.batches.create(
            job_type="parse_v2", configuration_id="cfg", source_directory_id="dir-1"
        )
    assert got == expected
    assert one.results is not None
    assert len(one.results) == 3
    assert cancelled.status is BatchStatus.CANCELLED
    assert made.status is BatchStatus.PENDING
    assert {"rate_limit", "server_error"} <= set(sim.stats.faults())


async def test_create_is_not_replayed_after_a_5xx(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(server_error=Trigger(first=1, on="batch_create"))
    async with client_for(sim) as c:
        with pytest.raises(Exception, match="503") as info:
            await c.batches.create(
                job_type="extract_v2", configuration_id="cfg", source_directory_id="dir-1"
            )
        assert not isinstance(info.value, APIConnectionError)
        sim.faults = Faults(rate_limit=Trigger(first=2, on="batch_create"), retry_after="0")
        made = await c.batches.create(
            job_type="extract_v2", configuration_id="cfg", source_directory_id="dir-1"
        )
    assert made.config.job.type == "extract_v2"
    creates = [r for r in sim.stats.log if r.method == "POST" and r.path == "/api/v2/batches"]
    assert [r.status for r in creates] == [503, 429, 429, 200]
    assert len(sim.batches) == N + 2


async def test_create_validation_errors_are_typed(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as c:
        with pytest.raises(ValueError, match="job_type must be one of parse_v2, extract_v2"):
            await c.batches.create(job_type="parse", configuration_id="c", source_directory_id="d")
        with pytest.raises(ValueError, match="source_directory_id must not be blank"):
            await c.batches.create(
                job_type="parse_v2", configuration_id="c", source_directory_id="  "
            )
        # what only the server checks comes back as a typed 422, naming the field
        # (webhook_url is optional in the API's schema: headers must be strings)
        with pytest.raises(UnprocessableEntityError, match="webhook_headers") as info:
            await c.batches.create(
                job_type="parse_v2",
                configuration_id="c",
                source_directory_id="d",
                webhook_configurations=[{"webhook_headers": {"X-Team": 7}}],
                webhook_configuration_ids=["wh-1"],
            )
        made = await c.batches.create(
            job_type="parse_v2",
            configuration_id="c",
            source_directory_id="d",
            webhook_configurations=[{"webhook_url": "https://example.invalid/hook"}],
        )
    assert info.value.status_code == 422
    assert info.value.detail[0]["loc"] == ["body", "webhook_configurations", 0, "webhook_headers"]
    creates = [r for r in sim.stats.log if r.method == "POST"]
    assert len(creates) == 2  # a 422 is never retried; bad arguments never leave
    assert made.id in sim.batches.ids()


async def test_get_and_cancel_errors_are_typed(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as c:
        with pytest.raises(NotFoundError, match="Batch bat-nope not found"):
            await c.batches.get("bat-nope")
        with pytest.raises(NotFoundError):
            await c.batches.cancel("bat-nope")
        with pytest.raises(ValueError, match="expand must be one of results"):
            await c.batches.get("bat-001", expand="files")
        with pytest.raises(ValueError, match="status must be one of PENDING"):
            c.batches.iter(status="running")
        with pytest.raises(ValueError, match="timezone-aware"):
            c.batches.iter(created_at_on_or_after=datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="ISO 8601"):
            await c.batches.list(created_at_on_or_before="yesterday")
        with pytest.raises(TypeError, match="unknown scan option"):
            c.batches.iter(pagesize=3)  # type: ignore[call-arg]
        sim.faults = Faults(rate_limit=Trigger.always(on="batch"), retry_after="120")
        with pytest.raises(RateLimitError):
            await c.batches.get("bat-001")


async def test_get_expands_results_only_when_asked(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as c:
        plain = await c.batches.get("bat-000")
        live = await c.batches.get("bat-live", expand="results")
        done = await c.batches.get("bat-000", expand="results")
    assert plain.results is None
    assert live.status is BatchStatus.PENDING
    assert live.results is None
    assert done.results is not None
    assert [r.job_reference is not None for r in done.results] == [True] * 3
    assert [q.get("expand") for q in (r.query for r in sim.stats.log)] == [
        None,
        "results",
        "results",
    ]


def test_v2_paths_live_under_their_own_root_and_escape_ids() -> None:
    from aiobatch import _protocol as proto

    assert proto.api_path("/api/v2/batches", "/{batch_id}", batch_id="a/b?c") == (
        "/api/v2/batches/a%2Fb%3Fc"
    )
    assert proto.path("/{job_id}", job_id="j") == "/api/v1/beta/batch-processing/j"
    with pytest.raises(ValueError, match="relative path segment"):
        proto.api_path("/api/v2/batches", "/{batch_id}", batch_id="..")

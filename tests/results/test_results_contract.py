"""Results against a server that behaves as the contract says (``tests/_contract.py``),
not as the simulator used to: repeated array parameters, fast-tier refusals, null
results after the end, one classify answer, v1 error fields."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator

import pytest
from _contract import Contract, ParseV1, Seen, app, storage
from _servers import serve
from aiohttp import web

from aiobatch import (
    BatchClient,
    BatchNotFinishedError,
    BatchWaitTimeoutError,
    Limits,
    RetryPolicy,
)
from aiobatch._storage import PresignedURLError, StorageTransport, check_download_url


@pytest.fixture
def state() -> Contract:
    return Contract()


@pytest.fixture
async def base_url(state: Contract) -> AsyncIterator[str]:
    async with serve(app(state)) as url:
        yield url


def client(base_url: str, policy: RetryPolicy) -> BatchClient:
    return BatchClient(api_key="llx-contract", base_url=base_url, retry=policy)


async def test_v2_expand_is_sent_repeated(
    state: Contract, base_url: str, policy: RetryPolicy, no_env: None
) -> None:
    state.v2_jobs = {"pjb-1": ("cost_effective", "# one"), "pjb-2": ("agentic", "# two")}
    async with client(base_url, policy) as c:
        got = [r async for r in c.batches.iter_results("bat-1")]
    assert [r.content.text if r.content else r.error for r in got] == ["# one", "# two"]
    parse = [s for s in state.seen if s.path.startswith("/api/v2/parse/")]
    assert [q for q in parse[0].query if q[0] == "expand"] == [
        ("expand", "markdown_full"),
        ("expand", "job_metadata"),
    ]


async def test_v1_errors_carry_the_jobs_error_code_and_a_404_is_read_from_the_status(
    state: Contract, base_url: str, policy: RetryPolicy, no_env: None
) -> None:
    state.v1_parse = {
        "pjb-ok": ParseV1(),
        "pjb-pending": ParseV1(status="PENDING"),
        "pjb-bad": ParseV1(
            status="ERROR", error_code="PDF_ENCRYPTED", error_message="password-protected"
        ),
        "pjb-gone": ParseV1(result_missing=True),
        "pjb-ok2": ParseV1(markdown="# two"),
    }
    async with client(base_url, policy) as c:
        got = [r async for r in c.job_items.iter_results("bjb-1")]
    errors = {r.item.job_id: r.error for r in got if r.error}
    assert [r.content.text for r in got if r.content] == ["# doc", "# two"]
    assert errors["pjb-pending"] is not None
    assert errors["pjb-pending"].kind == "not_ready"
    bad = errors["pjb-bad"]
    assert bad is not None
    assert bad.kind == "failed"
    assert "PDF_ENCRYPTED: password-protected" in bad.message
    gone = errors["pjb-gone"]
    assert gone is not None
    assert (gone.kind, gone.status_code) == ("missing", 404)


async def test_classify_is_one_request_after_the_jobs_status(
    state: Contract, base_url: str, policy: RetryPolicy, no_env: None
) -> None:
    # Both ids are UUIDs, as classify job ids are.
    done, failed = "0f1e2d3c-0000-4000-8000-000000000001", "0f1e2d3c-0000-4000-8000-000000000002"
    state.v1_type = "classify"
    state.classify = {done: "SUCCESS", failed: "ERROR"}
    async with client(base_url, policy) as c:
        got = [r async for r in c.job_items.iter_results("bjb-1")]
    ok, bad = got
    assert ok.content is not None
    assert [row["result"]["type"] for row in ok.content.json()] == ["invoice"]
    assert bad.error is not None
    assert (bad.error.kind, "rules did not match" in bad.error.message) == ("failed", True)
    classifier = [s for s in state.seen if s.path.startswith("/api/v1/classifier/")]
    # status, then results, once (the echoed next_page_token is not followed);
    # the failed job's results are never asked for; no paging parameters at all.
    asked = sorted(s.path.removeprefix("/api/v1/classifier/jobs/") for s in classifier)
    assert asked == sorted([done, f"{done}/results", failed])
    assert all(not s.query for s in classifier)


async def test_fast_tier_markdown_is_its_own_error_kind_and_text_works(
    state: Contract, base_url: str, policy: RetryPolicy, no_env: None
) -> None:
    state.v2_jobs = {"pjb-fast": ("fast", "# quick"), "pjb-slow": ("agentic", "# deep")}
    async with client(base_url, policy) as c:
        md = [r async for r in c.batches.iter_results("bat-1")]
        text = [r async for r in c.batches.iter_results("bat-1", result="text")]
    fast, slow = md
    assert slow.content is not None
    assert fast.error is not None
    assert fast.error.kind == "unsupported_tier"
    assert "fast tier" in fast.error.message
    assert 'result="text"' in fast.error.message
    assert [r.content.text if r.content else r.error for r in text] == [" quick", " deep"]


class FakeClock:
    """The policy's clock: sleeping moves it, nothing waits for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay

    def policy(self) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, monotonic=lambda: self.now, random=lambda: 0.0)


async def test_null_results_after_completion_are_waited_for(
    state: Contract, base_url: str, no_env: None
) -> None:
    state.v2_jobs = {"pjb-1": ("agentic", "# one")}
    state.null_results_for = 3  # COMPLETED, "before result mappings are available"
    clock = FakeClock()
    async with client(base_url, clock.policy()) as c:
        got = [r async for r in c.batches.iter_results("bat-1", wait=True, poll_interval=1)]
    assert [r.content.text if r.content else r.error for r in got] == ["# one"]
    assert clock.sleeps == [1.0, 1.5, 2.25]  # polled again, backing off, on the policy's clock
    gets = [s for s in state.seen if s.path == "/api/v2/batches/bat-1"]
    assert len(gets) == 4
    assert all(("expand", "results") in s.query for s in gets)


async def test_null_results_wait_is_bounded_by_the_timeout(
    state: Contract, base_url: str, no_env: None
) -> None:
    state.v2_jobs = {"pjb-1": ("agentic", "# one")}
    state.null_results_for = 1000
    clock = FakeClock()
    async with client(base_url, clock.policy()) as c:
        with pytest.raises(BatchWaitTimeoutError, match="results not available yet") as info:
            async for _ in c.batches.iter_results("bat-1", wait=True, timeout=10):
                pass
        assert info.value.batch is not None
        assert clock.now == 10.0
        # Without wait=, the same batch is "not finished", saying what is missing.
        with pytest.raises(BatchNotFinishedError, match="results not available yet"):
            async for _ in c.batches.iter_results("bat-1"):
                pass


async def test_a_result_too_large_inline_comes_through_its_presigned_url(
    state: Contract, base_url: str, policy: RetryPolicy, no_env: None
) -> None:
    big = "# big\n" + "x" * 50_000  # over the client's cap below
    state.v2_jobs = {"pjb-big": ("agentic", big), "pjb-none": ("agentic", "# none inline")}
    state.stored = {"pjb-big": "big", "pjb-none": "empty"}
    state.expire_first = True  # the first URL handed out has already run out
    log: list[Seen] = []
    async with serve(storage(state, log)) as storage_url:
        state.storage_url = storage_url
        c = BatchClient(
            api_key="llx-contract-KEY",
            base_url=base_url,
            retry=policy,
            limits=Limits(max_body_bytes=16 * 1024),
        )
        async with c:
            got = [r async for r in c.batches.iter_results("bat-1")]
    big_r, none_r = got
    assert big_r.content is not None
    assert big_r.content.spooled
    assert big_r.content.size == len(big.encode())
    assert b"".join(big_r.content.chunks(4096)) == big.encode()
    assert none_r.content is not None
    assert none_r.content.text == "# none inline"
    # No key, no client header went to the storage host; an expired URL was read again once.
    assert log
    for seen in log:
        assert "Authorization" not in seen.headers
        assert not any("llx-contract-KEY" in v for v in seen.headers.values())
        assert "aiobatch" not in seen.headers.get("User-Agent", "")
    assert sorted(dict(s.query)["X-Amz-Signature"] for s in log) == ["v1", "v2", "v3"]
    asked = [
        [v for k, v in s.query if k == "expand"]
        for s in state.seen
        if s.path == "/api/v2/parse/pjb-big"
    ]
    assert ["markdown_full_content_metadata", "job_metadata"] in asked


async def test_a_presigned_download_has_its_own_cap(
    state: Contract, base_url: str, policy: RetryPolicy, no_env: None
) -> None:
    state.v2_jobs = {"pjb-none": ("agentic", "y" * 5000)}
    state.stored = {"pjb-none": "empty"}
    log: list[Seen] = []
    async with serve(storage(state, log)) as storage_url:
        state.storage_url = storage_url
        limits = Limits(max_download_bytes=2048)
        async with BatchClient("k", base_url=base_url, retry=policy, limits=limits) as c:
            (r,) = [r async for r in c.batches.iter_results("bat-1")]
    assert r.error is not None
    assert r.error.kind == "too_large"
    assert "max_download_bytes" in r.error.message


@pytest.mark.parametrize(
    ("url", "base", "ok"),
    [
        ("https://s3.example.com/o?sig=1", "https://api.cloud.llamaindex.ai", True),
        ("http://s3.example.com/o?sig=1", "https://api.cloud.llamaindex.ai", False),
        ("http://127.0.0.1:9/o", "http://127.0.0.1:8080", True),
        ("file:///etc/passwd", "http://127.0.0.1:8080", False),
        ("https://user:pw@s3.example.com/o", "https://api.cloud.llamaindex.ai", False),
        ("", "https://api.cloud.llamaindex.ai", False),
    ],
)
def test_presigned_urls_are_https_unless_the_api_itself_is_plain_http(
    url: str, base: str, ok: bool
) -> None:
    if ok:
        assert str(check_download_url(url, base)) == url
    else:
        with pytest.raises(PresignedURLError, match="presigned URL"):
            check_download_url(url, base)


async def test_a_presigned_redirect_to_another_scheme_is_refused(no_env: None) -> None:
    async def hop(request: web.Request) -> web.Response:
        if request.path == "/same":
            raise web.HTTPFound("/data")
        if request.path == "/data":
            return web.Response(body=b"stored bytes")
        if request.path == "/creds":
            raise web.HTTPFound(f"http://user:pw@127.0.0.1:{request.url.port}/data")
        raise web.HTTPFound("https://127.0.0.1:9/elsewhere")  # http -> https: another scheme

    app = web.Application()
    app.router.add_get("/{tail:.*}", hop)
    async with serve(app) as url:
        config = BatchClient("k", base_url=url).config  # a plain-http base URL
        storage_transport = StorageTransport(config)
        try:
            with tempfile.TemporaryFile() as sink:
                assert await storage_transport.fetch(url + "/same", sink) == 12
                sink.seek(0)
                assert sink.read() == b"stored bytes"
                with pytest.raises(PresignedURLError, match="redirected from http to https"):
                    await storage_transport.fetch(url + "/other", sink)
                with pytest.raises(PresignedURLError, match="carries credentials"):
                    await storage_transport.fetch(url + "/creds", sink)
        finally:
            await storage_transport.aclose()


async def test_custom_headers_and_cookies_never_reach_the_storage_host(
    state: Contract,
    base_url: str,
    policy: RetryPolicy,
    no_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # LLAMA_CLOUD_CUSTOM_HEADERS are for the API host: object storage is another.
    monkeypatch.setenv("LLAMA_CLOUD_CUSTOM_HEADERS", "X-Tenant: acme\nX-Secret-Route: s3cr3t")
    state.v2_jobs = {"pjb-none": ("agentic", "# stored")}
    state.stored = {"pjb-none": "empty"}
    log: list[Seen] = []
    async with serve(storage(state, log)) as storage_url:
        state.storage_url = storage_url
        async with client(base_url, policy) as c:
            (r,) = [r async for r in c.batches.iter_results("bat-1")]
    assert r.content is not None
    assert r.content.text == "# stored"
    api = [s for s in state.seen if s.path.startswith("/api/v2/parse/")]
    assert api
    assert all(s.headers.get("X-Tenant") == "acme" for s in api)  # the API host gets them
    assert log
    for seen in log:
        names = {k.lower() for k in seen.headers}
        assert not names & {"x-tenant", "x-secret-route", "authorization", "cookie"}

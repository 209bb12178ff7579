"""Results against a server that behaves as the contract says (``tests/_contract.py``),
not as the simulator used to: repeated array parameters, fast-tier refusals, null
results after the end, one classify answer, v1 error fields."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _contract import Contract, ParseV1, app
from _servers import serve

from aiobatch import BatchClient, BatchNotFinishedError, BatchWaitTimeoutError, RetryPolicy


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

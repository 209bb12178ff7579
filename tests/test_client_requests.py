"""Request shape and error mapping for every endpoint, through aioresponses.

Every mock matches any URL (``ANY``) and the assertions read what aiohttp was
actually asked to send: method, the exact URL (escaped path and query), headers
and body.  Bodies are small: framing and big bodies live in test_transport.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
import pytest
from _servers import RecordingSleep
from aioresponses import aioresponses as Mock
from conftest import API, API_KEY, BASE_URL
from yarl import URL

from aiobatch import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchClient,
    BatchItem,
    BatchJob,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    ItemStatus,
    JobStatus,
    JobType,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    UnprocessableEntityError,
    __version__,
)
from aiobatch._protocol import Query
from aiobatch._transport import ACCEPT_ENCODINGS, Response

ANY = re.compile(r".*")
MakeClient = Callable[..., BatchClient]

ITEM = {"item_id": "itm-1", "item_name": "a.pdf", "status": "failed", "error_message": "bad"}
JOB = {
    "id": "bjb-1",
    "job_type": "parse",
    "project_id": "prj-1",
    "status": "running",
    "total_items": 3,
}


class Sent:
    """One request as aiohttp was asked to send it."""

    def __init__(self, method: str, url: URL, kwargs: dict[str, Any]) -> None:
        self.method = method
        self.url = url
        self.kwargs = kwargs

    @property
    def path(self) -> str:
        return self.url.raw_path

    @property
    def query(self) -> dict[str, str]:
        return dict(self.url.query)

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.kwargs["headers"])

    @property
    def body(self) -> bytes | None:
        data = self.kwargs.get("data")
        assert data is None or isinstance(data, bytes)
        return data


def sent(mock: Mock) -> list[Sent]:
    return [
        Sent(method, url, call.kwargs)
        for (method, url), calls in mock.requests.items()
        for call in calls
    ]


def only(mock: Mock) -> Sent:
    requests = sent(mock)
    assert len(requests) == 1, requests
    return requests[0]


# --- request shape --------------------------------------------------------------


async def test_job_items_list_minimal(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={"items": [ITEM], "total_size": 1})
    async with make_client() as client:
        page = await client.job_items.list("bjb-1")
    assert page.items == [
        BatchItem(item_id="itm-1", item_name="a.pdf", status=ItemStatus.FAILED, error_message="bad")
    ]
    assert page.total_size == 1
    req = only(aioresponses)
    assert req.method == "GET"
    assert str(req.url) == f"{BASE_URL}{API}/bjb-1/items"
    assert req.headers == {
        "Authorization": f"Bearer {API_KEY}",
        "Accept": "application/json",
        "Accept-Encoding": ", ".join(ACCEPT_ENCODINGS),
        "User-Agent": f"aiobatch/{__version__}",
    }
    assert req.body is None
    assert req.kwargs["allow_redirects"] is False


async def test_job_items_list_all_parameters(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={"items": []})
    async with make_client() as client:
        await client.job_items.list(
            "bjb-1",
            limit=50,
            offset=100,
            status="failed",
            organization_id="org-1",
            project_id="prj-1",
        )
    req = only(aioresponses)
    assert req.path == f"{API}/bjb-1/items"
    assert req.query == {
        "limit": "50",
        "offset": "100",
        "status": "failed",
        "organization_id": "org-1",
        "project_id": "prj-1",
    }


async def test_status_member_and_offset_zero(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={})
    async with make_client() as client:
        await client.job_items.list("bjb-1", offset=0, status=ItemStatus.CANCELLED)
    assert only(aioresponses).query == {"offset": "0", "status": "cancelled"}


async def test_client_scope_defaults_and_per_call_override(
    aioresponses: Mock, make_client: MakeClient
) -> None:
    aioresponses.get(re.compile(r".*/items\?.*"), payload={}, repeat=True)
    aioresponses.get(ANY, payload={"job": JOB, "progress_percentage": 0})
    async with make_client(organization_id="org-default", project_id="prj-default") as client:
        await client.job_items.list("j1")
        await client.job_items.list("j2", organization_id="org-call")
        await client.job_items.list("j3", project_id="prj-call")
        await client.jobs.get("j4", organization_id="org-x", project_id="prj-x")
    by_path = {r.path: r.query for r in sent(aioresponses)}
    assert by_path == {
        f"{API}/j1/items": {"organization_id": "org-default", "project_id": "prj-default"},
        f"{API}/j2/items": {"organization_id": "org-call", "project_id": "prj-default"},
        f"{API}/j3/items": {"organization_id": "org-default", "project_id": "prj-call"},
        f"{API}/j4": {"organization_id": "org-x", "project_id": "prj-x"},
    }


async def test_get_processing_results(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(
        ANY,
        payload={
            "item_id": "itm-1",
            "item_name": "a.pdf",
            "processing_results": [
                {
                    "item_id": "itm-1",
                    "job_config": {"mode": "x"},
                    "job_type": "parse",
                    "output_s3_path": "s3://b/k",
                    "parameters_hash": "h",
                    "processed_at": "2024-01-01T00:00:00Z",
                    "result_id": "r1",
                }
            ],
        },
    )
    async with make_client(project_id="prj-1") as client:
        res = await client.job_items.get_processing_results("itm-1", job_type="parse")
    assert res.item_id == "itm-1"
    assert [r.result_id for r in res.processing_results] == ["r1"]
    assert res.processing_results[0].job_config == {"mode": "x"}
    req = only(aioresponses)
    assert req.method == "GET"
    assert (
        str(req.url)
        == f"{BASE_URL}{API}/items/itm-1/processing-results?job_type=parse&project_id=prj-1"
    )


async def test_jobs_list(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={"items": [JOB], "total_size": 1})
    async with make_client() as client:
        jobs = await client.jobs.list(
            directory_id="dir-1",
            job_type=JobType.EXTRACT,
            status="dispatched",
            limit=10,
            offset=20,
            organization_id="org-1",
            project_id="prj-1",
        )
    assert [j.id for j in jobs.items] == ["bjb-1"]
    req = only(aioresponses)
    assert req.method == "GET"
    assert req.path == API
    assert req.query == {
        "directory_id": "dir-1",
        "job_type": "extract",
        "status": "dispatched",
        "limit": "10",
        "offset": "20",
        "organization_id": "org-1",
        "project_id": "prj-1",
    }


async def test_jobs_list_no_parameters(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={"items": None})
    async with make_client() as client:
        jobs = await client.jobs.list()
    assert jobs.items == []
    assert str(only(aioresponses).url) == f"{BASE_URL}{API}"


async def test_jobs_get(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={"job": JOB, "progress_percentage": 33.3})
    async with make_client() as client:
        status = await client.jobs.get("bjb-1")
    assert status.job.status is JobStatus.RUNNING
    assert status.progress_percentage == 33.3
    req = only(aioresponses)
    assert (req.method, str(req.url), req.body) == ("GET", f"{BASE_URL}{API}/bjb-1", None)


@pytest.mark.parametrize(
    ("reason", "body"), [(None, b"{}"), ("user asked", b'{"reason":"user asked"}')]
)
async def test_jobs_cancel(
    aioresponses: Mock, make_client: MakeClient, reason: str | None, body: bytes
) -> None:
    aioresponses.post(
        ANY,
        payload={"job_id": "bjb-1", "message": "ok", "processed_items": 2, "status": "cancelled"},
    )
    async with make_client() as client:
        res = await client.jobs.cancel("bjb-1", reason=reason, project_id="prj-1")
    assert res.status is JobStatus.CANCELLED
    assert res.processed_items == 2
    req = only(aioresponses)
    assert req.method == "POST"
    assert str(req.url) == f"{BASE_URL}{API}/bjb-1/cancel?project_id=prj-1"
    assert req.body == body
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_jobs_create_with_directory(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.post(ANY, payload=JOB)
    async with make_client() as client:
        job = await client.jobs.create(
            job_config={"parse_mode": "fast", "nested": {"x": [1, None]}},
            directory_id="dir-1",
            page_size=100,
            continue_as_new_threshold=5000,
            organization_id="org-1",
        )
    assert job == BatchJob(
        id="bjb-1",
        job_type=JobType.PARSE,
        project_id="prj-1",
        status=JobStatus.RUNNING,
        total_items=3,
    )
    req = only(aioresponses)
    assert req.method == "POST"
    assert str(req.url) == f"{BASE_URL}{API}?organization_id=org-1"
    assert req.headers["Content-Type"] == "application/json"
    assert req.body is not None
    assert msgspec.json.decode(req.body) == {
        "job_config": {"parse_mode": "fast", "nested": {"x": [1, None]}},
        "directory_id": "dir-1",
        "page_size": 100,
        "continue_as_new_threshold": 5000,
    }


async def test_jobs_create_with_item_ids(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.post(ANY, payload=JOB)
    async with make_client() as client:
        await client.jobs.create(job_config={}, item_ids=("a", "b/c"), project_id="prj-1")
    req = only(aioresponses)
    assert req.body == b'{"job_config":{},"item_ids":["a","b/c"]}'
    assert str(req.url) == f"{BASE_URL}{API}?project_id=prj-1"


# --- arguments checked before any request ------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda c: c.job_items.list(""), ValueError, "^job_id must be a non-empty string"),
        (lambda c: c.job_items.list("j", limit=0), ValueError, "^limit must be >= 1"),
        (lambda c: c.job_items.list("j", offset=-1), ValueError, "^offset must be >= 0"),
        (lambda c: c.job_items.list("j", status="done"), ValueError, "^status must be one of"),
        (lambda c: c.job_items.list("j", status="running"), ValueError, "^status must be one of"),
        (lambda c: c.job_items.list(".."), ValueError, "^job_id must not be '..'"),
        (lambda c: c.job_items.list("a\nb"), ValueError, "^job_id must not contain control"),
        (lambda c: c.job_items.list("j", project_id="p\r\n"), ValueError, "^project_id must not"),
        (
            lambda c: c.job_items.get_processing_results(""),
            ValueError,
            "^item_id must be a non-empty",
        ),
        (
            lambda c: c.job_items.get_processing_results("i", job_type="ocr"),
            ValueError,
            "^job_type must be one of",
        ),
        (lambda c: c.jobs.list(limit=0), ValueError, "^limit must be >= 1"),
        (lambda c: c.jobs.list(offset=-5), ValueError, "^offset must be >= 0"),
        (lambda c: c.jobs.list(status="pending-ish"), ValueError, "^status must be one of"),
        (lambda c: c.jobs.list(status="skipped"), ValueError, "^status must be one of"),
        (lambda c: c.jobs.list(job_type="nope"), ValueError, "^job_type must be one of"),
        (lambda c: c.jobs.get(""), ValueError, "^job_id must be a non-empty"),
        (lambda c: c.jobs.get("."), ValueError, "^job_id must not be '.'"),
        (lambda c: c.jobs.cancel(" "), ValueError, "^job_id must not be blank"),
        (lambda c: c.jobs.create(job_config={}), ValueError, "^pass exactly one of"),
        (
            lambda c: c.jobs.create(job_config={}, directory_id="d", item_ids=["i"]),
            ValueError,
            "^pass exactly one of",
        ),
        (lambda c: c.jobs.create(job_config={}, item_ids=[]), ValueError, "^item_ids must be"),
        (lambda c: c.jobs.create(job_config={}, item_ids="abc"), ValueError, "^item_ids must be"),
        (lambda c: c.jobs.create(job_config={}, item_ids=["ok", ""]), ValueError, r"^item_ids\[\]"),
        (lambda c: c.jobs.create(job_config={}, directory_id=".."), ValueError, "^directory_id"),
        (
            lambda c: c.jobs.create(job_config={}, directory_id="d", page_size=0),
            ValueError,
            "^page_size",
        ),
        (
            lambda c: c.jobs.create(job_config={}, directory_id="d", continue_as_new_threshold=-1),
            ValueError,
            "^continue_as_new_threshold",
        ),
        (
            lambda c: c.jobs.create(job_config=[], directory_id="d"),
            TypeError,
            "^job_config must be",
        ),
        (lambda c: c.job_items.list("j", limit="10"), TypeError, "^limit must be an int"),
    ],
)
async def test_bad_arguments_never_reach_the_network(
    aioresponses: Mock,
    make_client: MakeClient,
    call: Callable[[Any], Any],
    exc: type[Exception],
    message: str,
) -> None:
    aioresponses.get(ANY, payload={}, repeat=True)
    aioresponses.post(ANY, payload={}, repeat=True)
    async with make_client() as client:
        with pytest.raises(exc, match=message):
            await call(client)
    assert sent(aioresponses) == []


# --- path escaping ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_id", "raw_path"),
    [
        ("a/b", f"{API}/a%2Fb/items"),
        ("../../admin", f"{API}/..%2F..%2Fadmin/items"),
        ("x?limit=1000", f"{API}/x%3Flimit%3D1000/items"),
        ("x#frag", f"{API}/x%23frag/items"),
        ("a%2Fb", f"{API}/a%252Fb/items"),
        ("%2e%2e", f"{API}/%252e%252e/items"),
        ("..%2F", f"{API}/..%252F/items"),
        ("a b+c", f"{API}/a%20b%2Bc/items"),
    ],
)
async def test_job_id_stays_in_its_segment(
    aioresponses: Mock, make_client: MakeClient, job_id: str, raw_path: str
) -> None:
    aioresponses.get(ANY, payload={})
    async with make_client() as client:
        await client.job_items.list(job_id)
    req = only(aioresponses)
    assert req.path == raw_path
    assert req.url.query == {}
    assert req.url.host == "api.test.invalid"
    assert req.url.path.startswith(API + "/")
    assert req.url.raw_parts[-1] == "items"
    assert len(req.url.raw_parts) == len(URL(f"{BASE_URL}{API}/j/items").raw_parts)


async def test_item_id_escaped_in_processing_results(
    aioresponses: Mock, make_client: MakeClient
) -> None:
    aioresponses.get(ANY, payload={"item_id": "x", "item_name": "y"})
    async with make_client() as client:
        await client.job_items.get_processing_results("../items/x?y")
    assert only(aioresponses).path == f"{API}/items/..%2Fitems%2Fx%3Fy/processing-results"


async def test_base_url_prefix_is_kept(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={})
    async with make_client(base_url="http://proxy.test:8080/llama/") as client:
        await client.job_items.list("j")
    assert str(only(aioresponses).url) == f"http://proxy.test:8080/llama{API}/j/items"


# --- error mapping --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
    ],
)
async def test_status_errors(
    aioresponses: Mock, make_client: MakeClient, status: int, cls: type[APIStatusError]
) -> None:
    aioresponses.get(
        ANY, status=status, payload={"detail": f"nope {status}"}, headers={"x-request-id": "req-42"}
    )
    async with make_client(retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(APIStatusError) as info:
            await client.job_items.list("bjb-1", limit=5)
    err = info.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.detail == f"nope {status}"
    assert err.request_id == "req-42"
    assert err.method == "GET"
    assert err.path == f"{API}/bjb-1/items"
    assert str(err) == f"GET {API}/bjb-1/items -> {status}: nope {status}"
    assert err.headers["X-Request-ID"] == "req-42"


async def test_422_detail_list(aioresponses: Mock, make_client: MakeClient) -> None:
    detail = [
        {"loc": ["query", "limit"], "msg": "ensure this value is <= 1000", "type": "value_error"}
    ]
    aioresponses.get(ANY, status=422, payload={"detail": detail})
    async with make_client() as client:
        with pytest.raises(UnprocessableEntityError) as info:
            await client.job_items.list("bjb-1", limit=5000)
    assert info.value.detail == detail
    assert (
        str(info.value)
        == f"GET {API}/bjb-1/items -> 422: query.limit: ensure this value is <= 1000"
    )


async def test_429_carries_retry_after(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, status=429, payload={"detail": "slow"}, headers={"Retry-After": "3600"})
    async with make_client() as client:
        with pytest.raises(RateLimitError) as info:
            await client.jobs.get("bjb-1")
    assert info.value.retry_after == 3600.0
    assert len(sent(aioresponses)) == 1  # above max_retry_after: given up at once


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_is_not_followed(
    aioresponses: Mock, make_client: MakeClient, status: int
) -> None:
    aioresponses.get(ANY, status=status, headers={"Location": "https://elsewhere.test/steal"})
    aioresponses.get("https://elsewhere.test/steal", payload={})
    async with make_client() as client:
        with pytest.raises(APIStatusError) as info:
            await client.jobs.get("bjb-1")
    assert info.value.status_code == status
    assert "redirect to 'https://elsewhere.test/steal' not followed" in str(info.value)
    assert [r.url.host for r in sent(aioresponses)] == ["api.test.invalid"]


async def test_invalid_json_on_200(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, body=b"<html>maintenance</html>", content_type="text/html")
    async with make_client() as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.job_items.list("bjb-1")
    err = info.value
    assert (err.status, err.method, err.path) == (200, "GET", f"{API}/bjb-1/items")
    assert err.snippet == "<html>maintenance</html>"
    assert len(sent(aioresponses)) == 1  # not retried


async def test_schema_mismatch_on_200(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={"items": [{"item_id": 1}]})
    async with make_client() as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.job_items.list("bjb-1")
    assert info.value.status == 200
    assert "does not match BatchItemListResponse" in str(info.value)
    assert info.value.snippet == '{"items": [{"item_id": 1}]}'


# --- retries through the client ---------------------------------------------------------


async def test_503_then_200_is_retried(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.get(ANY, status=503, payload={"detail": "busy"})
    aioresponses.get(ANY, status=502, body=b"bad gateway")
    aioresponses.get(ANY, payload={"items": [ITEM]})
    async with make_client() as client:
        page = await client.job_items.list("bjb-1")
    assert [i.item_id for i in page.items] == ["itm-1"]
    assert len(sent(aioresponses)) == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_429_retry_after_then_200(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.get(ANY, status=429, headers={"Retry-After": "7"})
    aioresponses.get(ANY, payload={"job": JOB, "progress_percentage": 1})
    async with make_client() as client:
        await client.jobs.get("bjb-1")
    assert sleeps.delays == [7.0]


async def test_retries_exhausted_after_max_retries_plus_one(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.get(ANY, status=500, repeat=True)
    async with make_client(max_retries=2) as client:
        with pytest.raises(InternalServerError):
            await client.jobs.get("bjb-1")
    assert len(sent(aioresponses)) == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_cancel_is_retried_like_a_get(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.post(ANY, status=503)
    aioresponses.post(
        ANY, payload={"job_id": "j", "message": "m", "processed_items": 0, "status": "cancelled"}
    )
    async with make_client() as client:
        await client.jobs.cancel("j")
    assert len(sent(aioresponses)) == 2
    assert sleeps.delays == [0.5]


async def test_create_not_retried_on_5xx(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.post(ANY, status=503, repeat=True)
    async with make_client() as client:
        with pytest.raises(InternalServerError):
            await client.jobs.create(job_config={}, directory_id="d")
    assert len(sent(aioresponses)) == 1
    assert sleeps.delays == []


async def test_create_retried_on_429(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.post(ANY, status=429, headers={"retry-after-ms": "1500"})
    aioresponses.post(ANY, payload=JOB)
    async with make_client() as client:
        job = await client.jobs.create(job_config={}, directory_id="d")
    assert job.id == "bjb-1"
    assert sleeps.delays == [1.5]


def _connector_error() -> aiohttp.ClientConnectorError:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("api.test.invalid", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


async def test_create_retried_when_connection_never_opened(
    aioresponses: Mock, make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    aioresponses.post(ANY, exception=_connector_error())
    aioresponses.post(ANY, exception=aiohttp.ConnectionTimeoutError("connect timed out"))
    aioresponses.post(ANY, payload=JOB)
    async with make_client() as client:
        job = await client.jobs.create(job_config={}, item_ids=["i"], project_id="prj-1")
    assert job.id == "bjb-1"
    assert len(sent(aioresponses)) == 3
    assert sleeps.delays == [0.5, 1.0]


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (aiohttp.ServerDisconnectedError(), APIConnectionError),
        (aiohttp.ClientPayloadError("truncated"), APIConnectionError),
        (aiohttp.SocketTimeoutError("read timed out"), APITimeoutError),
        (TimeoutError(), APITimeoutError),
    ],
)
async def test_create_not_retried_once_request_may_have_been_sent(
    aioresponses: Mock,
    make_client: MakeClient,
    sleeps: RecordingSleep,
    exc: Exception,
    cls: type[Exception],
) -> None:
    aioresponses.post(ANY, exception=exc)
    aioresponses.post(ANY, payload=JOB)
    async with make_client() as client:
        with pytest.raises(APIConnectionError) as info:
            await client.jobs.create(job_config={}, directory_id="d")
    assert type(info.value) is cls
    assert info.value.request_sent is True
    assert info.value.method == "POST"
    assert info.value.path == API
    assert len(sent(aioresponses)) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("exc", "cls", "request_sent"),
    [
        (aiohttp.ServerDisconnectedError(), APIConnectionError, True),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), APIConnectionError, True),
        (ConnectionResetError(104, "reset"), APIConnectionError, True),
        (aiohttp.SocketTimeoutError("read timed out"), APITimeoutError, True),
        (aiohttp.ConnectionTimeoutError("connect timed out"), APITimeoutError, False),
        (_connector_error(), APIConnectionError, False),
    ],
)
async def test_get_connection_errors_are_mapped_and_retried(
    aioresponses: Mock,
    make_client: MakeClient,
    sleeps: RecordingSleep,
    exc: Exception,
    cls: type[Exception],
    request_sent: bool,
) -> None:
    aioresponses.get(ANY, exception=exc, repeat=True)
    async with make_client(max_retries=1) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.jobs.get("bjb-1")
    err = info.value
    assert type(err) is cls
    assert err.request_sent is request_sent
    assert (err.method, err.path) == ("GET", f"{API}/bjb-1")
    assert str(err).startswith(f"GET {API}/bjb-1: ")
    assert err.__cause__ is exc
    assert len(sent(aioresponses)) == 2
    assert sleeps.delays == [0.5]


# --- lifecycle -------------------------------------------------------------------------


async def test_use_before_open_is_an_error(aioresponses: Mock, make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(ClientClosedError, match="not open: use `async with"):
        await client.job_items.list("j")
    await client.aclose()
    assert sent(aioresponses) == []


async def test_use_after_close_is_an_error(aioresponses: Mock, make_client: MakeClient) -> None:
    aioresponses.get(ANY, payload={})
    async with make_client() as client:
        await client.job_items.list("j")
        assert repr(client) == f"<BatchClient base_url={BASE_URL!r} state=open>"
    assert repr(client) == f"<BatchClient base_url={BASE_URL!r} state=closed>"
    with pytest.raises(ClientClosedError, match=r"^BatchClient is closed$"):
        await client.job_items.list("j")
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    await client.aclose()  # idempotent
    assert len(sent(aioresponses)) == 1


async def test_explicit_aclose_inside_block(aioresponses: Mock, make_client: MakeClient) -> None:
    async with make_client() as client:
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await client.jobs.get("j")
    assert sent(aioresponses) == []


# --- the key never leaks ---------------------------------------------------------------


async def test_key_never_in_errors_or_debug_logs(
    aioresponses: Mock, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"invalid api key {API_KEY}"
    aioresponses.get(ANY, status=503, payload={"detail": echo})
    aioresponses.get(ANY, status=401, payload={"detail": echo}, headers={"x-request-id": "r1"})
    aioresponses.get(ANY, status=200, body=f"not json: Bearer {API_KEY}".encode())
    aioresponses.get(ANY, status=302, headers={"Location": f"https://evil.test/?k={API_KEY}"})
    aioresponses.get(ANY, exception=aiohttp.ServerDisconnectedError())
    aioresponses.get(ANY, exception=aiohttp.ServerDisconnectedError())
    aioresponses.get(
        ANY, status=422, payload={"detail": [{"loc": ["header", API_KEY], "msg": API_KEY}]}
    )
    aioresponses.get(ANY, status=200, payload={"items": API_KEY})
    errors: list[Exception] = []
    async with make_client(max_retries=1) as client:
        for _ in range(6):
            with pytest.raises((APIStatusError, APIConnectionError, ResponseDecodeError)) as info:
                await client.job_items.list("bjb-1", project_id="prj")
            errors.append(info.value)
        assert API_KEY not in repr(client)
        assert API_KEY not in repr(client.config)
    assert [type(e).__name__ for e in errors] == [
        "AuthenticationError",
        "ResponseDecodeError",
        "APIStatusError",
        "APIConnectionError",
        "UnprocessableEntityError",
        "ResponseDecodeError",
    ]
    assert errors[0].args == (f"GET {API}/bjb-1/items -> 401: invalid api key <redacted>",)
    for err in errors:
        assert API_KEY not in str(err)
        assert API_KEY not in repr(err)
        assert API_KEY not in repr(getattr(err, "detail", None))
        assert API_KEY not in getattr(err, "snippet", "")
    assert API_KEY not in caplog.text
    assert "retrying GET" in caplog.text  # the DEBUG log did run


async def test_errors_leave_the_client_block_unwrapped(
    aioresponses: Mock, make_client: MakeClient
) -> None:
    """An error raised inside ``async with client`` is not wrapped in an ExceptionGroup."""
    aioresponses.get(ANY, status=404, payload={"detail": "no such job"})
    client = make_client()
    with pytest.raises(NotFoundError) as info:
        async with client:
            await client.jobs.get("missing")
    assert info.value.detail == "no such job"
    assert repr(client).endswith("state=closed>")

    with pytest.raises(KeyError):
        async with make_client():
            raise KeyError("user bug")


# --- session= / transport= and a transport without aiohttp -------------------------


class FakeTransport:
    """A ``Transport`` that answers from a script: plain dict headers, no aiohttp."""

    def __init__(self, *responses: Response) -> None:
        self.responses = list(responses)
        self.sent: list[tuple[str, str, Query, bytes | None]] = []
        self.closed = False

    async def send(self, method: str, path: str, *, params: Query, body: bytes | None) -> Response:
        self.sent.append((method, path, params, body))
        return self.responses.pop(0)

    async def aclose(self) -> None:
        self.closed = True


async def test_session_and_transport_together_are_refused(no_env: None) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match=r"session= or transport=, not both") as info:
            BatchClient(API_KEY, session=session, transport=FakeTransport())
        assert isinstance(info.value, ConfigurationError)
        assert not session.closed  # the borrowed session is left alone


async def test_a_transport_s_plain_response_is_deciphered(
    make_client: MakeClient, sleeps: RecordingSleep
) -> None:
    items = msgspec.json.encode({"items": [ITEM], "total_size": 1})
    transport = FakeTransport(
        Response(503, {"Retry-After": "2"}, b'{"detail": "busy"}', True),
        Response(200, {}, items[:-5], False),  # cut short at EOF: retried as a connection error
        Response(200, {}, items, True),
        Response(429, {"retry-after": "3", "X-Request-Id": "r7"}, b"{}", True),
        Response(404, {"X-Request-Id": "r8"}, b'{"detail": "no such job"}', True),
    )
    async with make_client(transport=transport) as client:
        page = await client.job_items.list("bjb-1")
        assert page.items[0].item_id == "itm-1"
        with pytest.raises(NotFoundError) as info:
            await client.jobs.get("bjb-2")
    assert transport.closed
    assert [s[:2] for s in transport.sent] == [("GET", f"{API}/bjb-1/items")] * 3 + [
        ("GET", f"{API}/bjb-2")
    ] * 2
    assert info.value.request_id == "r8"
    assert info.value.headers["x-request-id"] == "r8"
    # Retry-After read from a plain dict, whatever the case of its name
    assert sleeps.delays[0] == 2.0
    assert sleeps.delays[2] == 3.0


async def test_query_values_that_need_escaping_take_yarls_encoder(
    aioresponses: Mock, make_client: MakeClient
) -> None:
    # Plain values (ids, offsets, statuses) are joined as they are; anything else
    # is left to yarl, so a value can never break out of its parameter.
    aioresponses.get(ANY, payload={}, repeat=True)
    async with make_client() as client:
        await client.job_items.list("bjb-1", offset=5, project_id="prj-1_a.b~c")
        await client.job_items.list("bjb-1", project_id="a b&c=d/é#x")
    plain, odd = sent(aioresponses)
    assert plain.url.raw_query_string == "offset=5&project_id=prj-1_a.b~c"
    assert odd.query == {"project_id": "a b&c=d/é#x"}
    assert "&c=" not in odd.url.raw_query_string

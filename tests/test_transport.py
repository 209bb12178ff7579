"""The transport over real loopback sockets: framing, size caps, timeouts, TLS, redirects.

Servers are purpose-built per test (``tests/_servers.py``): ``aiohttp.web`` apps
for well-formed answers, a raw ``asyncio`` server for what aiohttp's server would
never send (a lying Content-Length, a connection dropped mid-answer, silence).
No test sleeps for real backoff: the client's RetryPolicy records its delays.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
import time
import warnings
from typing import Any, cast

import aiohttp
import msgspec
import pytest
import trustme
from _servers import (
    Action,
    Drop,
    Hang,
    RawServer,
    RecordingSleep,
    Reply,
    http_response,
    serve,
    unused_port,
)
from aiohttp import web
from conftest import API, API_KEY

from aiobatch import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BatchClient,
    ClientClosedError,
    Limits,
    NotFoundError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    Timeout,
    TLSVerificationError,
    __version__,
)
from aiobatch import _protocol as proto
from aiobatch._transport import AiohttpTransport

pytestmark = pytest.mark.usefixtures("no_env")

JOB = {
    "id": "bjb-1",
    "job_type": "parse",
    "project_id": "prj-1",
    "status": "running",
    "total_items": 3,
}


def items_body(n: int, *, total: int | None = None) -> bytes:
    items = [
        {
            "item_id": f"itm-{i:06d}",
            "item_name": f"folder/document-{i:06d}.pdf",
            "status": "completed",
            "completed_at": "2024-05-01T12:00:00.123Z",
            "job_id": f"job-{i}",
        }
        for i in range(n)
    ]
    return msgspec.json.encode({"items": items, "total_size": n if total is None else total})


def client_for(base_url: str, sleeps: RecordingSleep, **kw: Any) -> BatchClient:
    kw.setdefault("retry", RetryPolicy(sleep=sleeps, random=lambda: 0.0))
    return BatchClient(API_KEY, base_url=base_url, **kw)


def transport_of(client: BatchClient) -> AiohttpTransport:
    return cast(AiohttpTransport, client._transport)


# --- what goes on the wire -------------------------------------------------------------


async def test_raw_request_on_the_wire(sleeps: RecordingSleep) -> None:
    ok = http_response(body=b'{"items": []}')
    async with (
        RawServer([Reply(ok)]) as server,
        client_for(server.base_url, sleeps, project_id="p&q=1") as client,
    ):
        await client.job_items.list("a/b%2Fc?d#e/../..", limit=3)
    [req] = server.requests
    assert req.method == "GET"
    # %2F stays encoded (yarl does not turn it back into "/"), "%" itself is escaped,
    # "?" and "#" cannot start a query or fragment, "/.." cannot climb.
    assert req.target == f"{API}/a%2Fb%252Fc%3Fd%23e%2F..%2F../items?limit=3&project_id=p%26q%3D1"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.headers["user-agent"] == f"aiobatch/{__version__}"
    assert req.headers["accept"] == "application/json"
    assert "content-type" not in req.headers
    assert req.body == b""


@pytest.mark.parametrize(
    ("job_id", "segment"),
    [
        ("%2F", "%252F"),
        ("..%2F..%2F", "..%252F..%252F"),
        ("a/../../b", "a%2F..%2F..%2Fb"),
        ("%2e%2e", "%252e%252e"),
    ],
)
async def test_escaped_job_ids_stay_escaped_on_the_wire(
    sleeps: RecordingSleep, job_id: str, segment: str
) -> None:
    async with (
        RawServer([Reply(http_response(body=b"{}"))]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        await client.job_items.list(job_id)
    assert [r.target for r in server.requests] == [f"{API}/{segment}/items"]


async def test_post_body_on_the_wire(sleeps: RecordingSleep) -> None:
    reply = http_response(
        body=b'{"job_id":"j","message":"m","processed_items":1,"status":"cancelled"}'
    )
    async with (
        RawServer([Reply(reply)]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        await client.jobs.cancel("bjb-1", reason="stop")
    [req] = server.requests
    assert req.request_line == f"POST {API}/bjb-1/cancel HTTP/1.1"
    assert req.headers["content-type"] == "application/json"
    assert req.body == b'{"reason":"stop"}'


# --- bodies -----------------------------------------------------------------------------


def big_page_app(mode: str) -> web.Application:
    body = items_body(2000)
    assert len(body) > 64 * 1024

    async def handler(request: web.Request) -> web.StreamResponse:
        if mode == "length":
            return web.Response(body=body, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if mode == "gzip":
            resp.enable_compression(web.ContentCoding.gzip)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for start in range(0, len(body), 7000):
            await resp.write(body[start : start + 7000])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get(f"{API}/{{job_id}}/items", handler)
    return app


@pytest.mark.parametrize("mode", ["length", "chunked", "gzip"])
async def test_page_over_64_kib_decodes(sleeps: RecordingSleep, mode: str) -> None:
    async with serve(big_page_app(mode)) as url, client_for(url, sleeps) as client:
        page = await client.job_items.list("bjb-1", limit=2000)
    assert len(page.items) == 2000
    assert page.total_size == 2000
    assert page.items[0].item_id == "itm-000000"
    assert page.items[-1].item_id == "itm-001999"
    assert page.items[-1].item_name == "folder/document-001999.pdf"
    assert sleeps.delays == []


async def test_truncated_body_is_retried_then_succeeds(sleeps: RecordingSleep) -> None:
    good = items_body(3)
    truncated = http_response(body=good[:20], content_length=len(good))
    async with (
        RawServer([Drop(truncated), Reply(http_response(body=good))]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        page = await client.job_items.list("bjb-1")
    assert [i.item_id for i in page.items] == ["itm-000000", "itm-000001", "itm-000002"]
    assert len(server.requests) == 2
    assert sleeps.delays == [0.5]


async def test_truncated_body_gives_up_as_connection_error(sleeps: RecordingSleep) -> None:
    good = items_body(3)
    truncated = http_response(body=good[:20], content_length=len(good))
    async with (
        RawServer([Drop(truncated)]) as server,
        client_for(server.base_url, sleeps, max_retries=2) as client,
    ):
        with pytest.raises(APIConnectionError) as info:
            await client.job_items.list("bjb-1")
    assert type(info.value) is APIConnectionError
    assert info.value.request_sent is True
    assert str(info.value).startswith(
        f"GET {API}/bjb-1/items: connection failed: ClientPayloadError"
    )
    assert len(server.requests) == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_truncated_post_is_not_replayed(sleeps: RecordingSleep) -> None:
    body = msgspec.json.encode(JOB)
    truncated = http_response(body=body[:10], content_length=len(body))
    async with (
        RawServer([Drop(truncated), Reply(http_response(body=body))]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        with pytest.raises(APIConnectionError):
            await client.jobs.create(job_config={}, directory_id="d")
    assert len(server.requests) == 1
    assert sleeps.delays == []


async def test_unframed_body_cut_short_counts_as_connection_error(sleeps: RecordingSleep) -> None:
    """No Content-Length, no chunking: EOF ends the body, so a cut looks clean;
    the decode failure is then reported (and retried) as a connection error."""
    good = items_body(2)
    cut = http_response(body=good[:25], content_length=-1, headers={"Connection": "close"})
    whole = http_response(body=good, content_length=-1, headers={"Connection": "close"})
    async with (
        RawServer([Drop(cut), Drop(whole)]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        page = await client.job_items.list("bjb-1")
    assert len(page.items) == 2
    assert len(server.requests) == 2
    assert sleeps.delays == [0.5]


async def test_unframed_body_cut_short_exhausted(sleeps: RecordingSleep) -> None:
    cut = http_response(body=b'{"items": [', content_length=-1, headers={"Connection": "close"})
    async with (
        RawServer([Drop(cut)]) as server,
        client_for(server.base_url, sleeps, max_retries=0) as client,
    ):
        with pytest.raises(APIConnectionError) as info:
            await client.job_items.list("bjb-1")
    assert str(info.value) == (
        f"GET {API}/bjb-1/items: connection closed mid-body (11 bytes, no length framing)"
    )
    assert isinstance(info.value.__cause__, ResponseDecodeError)


async def test_dropped_connection_is_retried(sleeps: RecordingSleep) -> None:
    script: list[Action] = [Drop(), Drop(), Reply(http_response(body=items_body(1)))]
    async with RawServer(script) as server, client_for(server.base_url, sleeps) as client:
        page = await client.job_items.list("bjb-1")
    assert len(page.items) == 1
    # aiohttp itself replays an idempotent method once after ServerDisconnectedError
    # (RFC 9112 s9.3.1): attempt 1 is two requests on the wire, attempt 2 succeeds.
    assert len(server.requests) == 3
    assert sleeps.delays == [0.5]


async def test_dropped_connection_exhausts_retries(sleeps: RecordingSleep) -> None:
    async with (
        RawServer([Drop()]) as server,
        client_for(server.base_url, sleeps, max_retries=3) as client,
    ):
        with pytest.raises(APIConnectionError) as info:
            await client.jobs.cancel("bjb-1")
    assert "ServerDisconnectedError" in str(info.value)
    # POST: no replay inside aiohttp, so exactly max_retries + 1 requests on the wire
    assert len(server.requests) == 4
    assert sleeps.delays == [0.5, 1.0, 2.0]


async def test_dropped_get_wire_count(sleeps: RecordingSleep) -> None:
    async with (
        RawServer([Drop()]) as server,
        client_for(server.base_url, sleeps, max_retries=2) as client,
    ):
        with pytest.raises(APIConnectionError):
            await client.jobs.get("bjb-1")
    assert len(server.requests) == 6  # 3 attempts x (1 + aiohttp's own replay)
    assert sleeps.delays == [0.5, 1.0]


async def test_429_retry_after_then_200(sleeps: RecordingSleep) -> None:
    limited = http_response(429, b'{"detail":"slow down"}', {"Retry-After": "2"})
    async with (
        RawServer([Reply(limited), Reply(http_response(body=items_body(1)))]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        page = await client.job_items.list("bjb-1")
    assert len(page.items) == 1
    assert sleeps.delays == [2.0]
    assert server.connections == 1  # the connection was kept alive across the retry


async def test_invalid_json_is_a_decode_error_not_retried(sleeps: RecordingSleep) -> None:
    bad = http_response(body=b'{"items": [oops]}')
    async with RawServer([Reply(bad)]) as server, client_for(server.base_url, sleeps) as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.job_items.list("bjb-1")
    assert info.value.status == 200
    assert info.value.snippet == '{"items": [oops]}'
    assert len(server.requests) == 1
    assert sleeps.delays == []


# --- body size cap ----------------------------------------------------------------------

CAP = 4096


def padded_json(size: int) -> bytes:
    """A valid list response of exactly ``size`` bytes."""
    head, tail = b'{"items":[],"next_page_token":"', b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


def sized_app(body: bytes, mode: str) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        if mode == "length":
            return web.Response(body=body, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if mode == "gzip":
            resp.enable_compression(web.ContentCoding.gzip)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for start in range(0, len(body), 1000):
                await resp.write(body[start : start + 1000])
            await resp.write_eof()
        except ConnectionError:  # the client hung up on purpose
            pass
        return resp

    app = web.Application()
    app.router.add_get(f"{API}/{{job_id}}/items", handler)
    return app


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        ("length", f"Content-Length {CAP + 1}"),
        ("chunked", "body (after decompression)"),
        ("gzip", "body (after decompression)"),
    ],
)
async def test_body_over_cap_is_refused(sleeps: RecordingSleep, mode: str, what: str) -> None:
    async with (
        serve(sized_app(padded_json(CAP + 1), mode)) as url,
        client_for(url, sleeps, limits=Limits(max_body_bytes=CAP)) as client,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await client.job_items.list("bjb-1")
    err = info.value
    assert err.limit == CAP
    assert (err.method, err.path) == ("GET", f"{API}/bjb-1/items")
    assert str(err) == (
        f"GET {API}/bjb-1/items: {what} exceeds the {CAP}-byte cap (Limits.max_body_bytes)"
    )
    assert sleeps.delays == []


@pytest.mark.parametrize("mode", ["length", "chunked", "gzip"])
async def test_body_exactly_at_cap_is_accepted(sleeps: RecordingSleep, mode: str) -> None:
    async with (
        serve(sized_app(padded_json(CAP), mode)) as url,
        client_for(url, sleeps, limits=Limits(max_body_bytes=CAP)) as client,
    ):
        page = await client.job_items.list("bjb-1")
    assert page.next_page_token is not None
    assert len(page.next_page_token) == CAP - len(b'{"items":[],"next_page_token":""}')


async def test_gzip_bomb_with_small_content_length_is_refused(sleeps: RecordingSleep) -> None:
    inflated = padded_json(200_000)
    compressed = gzip.compress(inflated)
    assert len(compressed) < CAP
    reply = http_response(body=compressed, headers={"Content-Encoding": "gzip"})
    async with (
        RawServer([Reply(reply)]) as server,
        client_for(server.base_url, sleeps, limits=Limits(max_body_bytes=CAP)) as client,
    ):
        with pytest.raises(ResponseTooLargeError, match="body \\(after decompression\\)"):
            await client.job_items.list("bjb-1")
    assert len(server.requests) == 1


async def test_gzip_with_content_length_under_cap_decodes(sleeps: RecordingSleep) -> None:
    body = items_body(50)
    reply = http_response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    async with (
        RawServer([Reply(reply)]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        page = await client.job_items.list("bjb-1")
    assert len(page.items) == 50


# --- redirects ---------------------------------------------------------------------------


async def test_redirect_to_another_host_is_not_followed(sleeps: RecordingSleep) -> None:
    seen_by_other: list[dict[str, str]] = []

    async def steal(request: web.Request) -> web.Response:
        seen_by_other.append(dict(request.headers))
        return web.json_response({"items": []})

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", steal)
    async with serve(other) as other_url:
        location = f"{other_url}/steal"
        redirect = http_response(302, b"", {"Location": location})
        async with (
            RawServer([Reply(redirect)]) as server,
            client_for(server.base_url, sleeps) as client,
        ):
            with pytest.raises(APIStatusError) as info:
                await client.job_items.list("bjb-1")
    assert seen_by_other == []
    assert info.value.status_code == 302
    assert f"redirect to {location!r} not followed" in str(info.value)
    assert len(server.requests) == 1
    assert sleeps.delays == []


async def test_borrowed_session_also_never_follows_redirects(sleeps: RecordingSleep) -> None:
    hits: list[str] = []

    async def target(request: web.Request) -> web.Response:
        hits.append(request.headers.get("Authorization", ""))
        return web.json_response({"items": []})

    other = web.Application()
    other.router.add_get("/x", target)
    async with serve(other) as other_url:
        redirect = http_response(307, b"", {"Location": f"{other_url}/x"})
        async with (
            RawServer([Reply(redirect)]) as server,
            aiohttp.ClientSession() as session,
            client_for(server.base_url, sleeps, session=session) as client,
        ):
            with pytest.raises(APIStatusError):
                await client.jobs.get("j")
    assert hits == []


# --- timeouts and refused connections -----------------------------------------------------


async def test_total_timeout_maps_to_api_timeout_error(sleeps: RecordingSleep) -> None:
    async with (
        RawServer([Hang()]) as server,
        client_for(server.base_url, sleeps, timeout=Timeout(total=0.2), max_retries=1) as client,
    ):
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            await client.job_items.list("bjb-1")
        elapsed = time.monotonic() - started
    assert str(info.value) == f"GET {API}/bjb-1/items: timed out (TimeoutError)"
    assert info.value.request_sent is True
    assert len(server.requests) == 2
    assert sleeps.delays == [0.5]
    assert elapsed < 10  # does not hang


async def test_read_timeout_maps_to_api_timeout_error(sleeps: RecordingSleep) -> None:
    timeout = Timeout(total=None, connect=None, read=0.2)
    async with (
        RawServer([Hang()]) as server,
        client_for(server.base_url, sleeps, timeout=timeout, max_retries=0) as client,
    ):
        with pytest.raises(APITimeoutError) as info:
            await client.jobs.get("bjb-1")
    assert str(info.value) == f"GET {API}/bjb-1: timed out (SocketTimeoutError)"


async def test_timed_out_post_is_not_replayed(sleeps: RecordingSleep) -> None:
    async with (
        RawServer([Hang()]) as server,
        client_for(server.base_url, sleeps, timeout=0.2) as client,
    ):
        with pytest.raises(APITimeoutError):
            await client.jobs.create(job_config={}, directory_id="d")
    assert len(server.requests) == 1
    assert sleeps.delays == []


async def test_connection_refused_is_retried_even_for_post(sleeps: RecordingSleep) -> None:
    port = unused_port()
    async with client_for(f"http://127.0.0.1:{port}", sleeps, max_retries=2) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.jobs.create(job_config={}, directory_id="d")
    err = info.value
    assert type(err) is APIConnectionError
    assert err.request_sent is False
    assert str(err).startswith(f"POST {API}: cannot connect to 127.0.0.1:{port}")
    assert sleeps.delays == [0.5, 1.0]


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


def _ok_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"job": JOB, "progress_percentage": 50.0})

    app = web.Application()
    app.router.add_get(f"{API}/{{job_id}}", handler)
    return app


async def test_untrusted_certificate_is_refused_and_not_retried(
    sleeps: RecordingSleep, tls_ca: trustme.CA
) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    async with serve(_ok_app(), ssl=server_ctx) as url:
        assert url.startswith("https://")
        async with client_for(url, sleeps) as client:
            with pytest.raises(TLSVerificationError) as info:
                await client.jobs.get("bjb-1")
    assert info.value.request_sent is False
    assert "certificate verify failed" in str(info.value)
    assert sleeps.delays == []


async def test_https_to_plain_http_port_is_a_tls_error(sleeps: RecordingSleep) -> None:
    async with (
        serve(_ok_app()) as url,
        client_for(url.replace("http://", "https://"), sleeps) as client,
    ):
        with pytest.raises(TLSVerificationError, match="TLS handshake failed"):
            await client.jobs.get("bjb-1")
    assert sleeps.delays == []


async def test_borrowed_session_with_trusted_ca(sleeps: RecordingSleep, tls_ca: trustme.CA) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    tls_ca.configure_trust(client_ctx)
    async with (
        serve(_ok_app(), ssl=server_ctx) as url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx)) as session,
    ):
        async with client_for(url, sleeps, session=session) as client:
            status = await client.jobs.get("bjb-1")
        assert status.progress_percentage == 50.0
        assert not session.closed


# --- session ownership and lifecycle ------------------------------------------------------


def _record_loop_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    return errors


async def test_owned_session_is_lazy_and_closed_on_exit(sleeps: RecordingSleep) -> None:
    errors = _record_loop_errors()
    async with serve(_ok_app()) as url:
        client = client_for(url, sleeps, limits=Limits(max_connections=7))
        assert transport_of(client)._session is None
        async with client:
            assert transport_of(client)._session is None  # not before the first request
            await client.jobs.get("bjb-1")
            session = transport_of(client)._session
            assert session is not None
            assert not session.closed
            assert session.connector is not None
            assert session.connector.limit == 7
        assert session.closed
        assert transport_of(client)._session is None
    del client, session
    gc.collect()
    assert errors == []


async def test_unclosed_session_detector_works() -> None:
    """Control for the test above: an abandoned session is reported."""
    errors = _record_loop_errors()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        session = aiohttp.ClientSession()
        del session
        gc.collect()
    assert [e["message"] for e in errors] == ["Unclosed client session"]


async def test_client_closed_without_requests_opens_nothing(sleeps: RecordingSleep) -> None:
    errors = _record_loop_errors()
    async with client_for("http://127.0.0.1:1", sleeps) as client:
        pass
    assert transport_of(client)._session is None
    await client.aclose()
    gc.collect()
    assert errors == []


async def test_borrowed_session_is_never_closed(sleeps: RecordingSleep) -> None:
    async with serve(_ok_app()) as url, aiohttp.ClientSession() as session:
        async with client_for(url, sleeps, session=session) as client:
            await client.jobs.get("bjb-1")
            assert transport_of(client)._session is session
        assert not session.closed
        await client.aclose()
        assert not session.closed
        async with session.get(f"{url}{API}/bjb-1") as resp:  # still usable
            assert resp.status == 200


async def test_borrowed_session_raise_for_status_is_ignored(sleeps: RecordingSleep) -> None:
    reply = http_response(404, b'{"detail":"no such job"}', {"x-request-id": "r-7"})
    async with (
        RawServer([Reply(reply)]) as server,
        aiohttp.ClientSession(raise_for_status=True) as session,
        client_for(server.base_url, sleeps, session=session) as client,
    ):
        with pytest.raises(NotFoundError) as info:
            await client.jobs.get("missing")
    assert info.value.detail == "no such job"
    assert info.value.request_id == "r-7"


async def test_concurrent_requests_share_the_session(sleeps: RecordingSleep) -> None:
    served: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        served.append(request.match_info["job_id"])
        await asyncio.sleep(0)
        return web.Response(body=items_body(5), content_type="application/json")

    app = web.Application()
    app.router.add_get(f"{API}/{{job_id}}/items", handler)
    async with serve(app) as url, client_for(url, sleeps) as client:
        pages = await asyncio.gather(*(client.job_items.list(f"j{i}") for i in range(20)))
    assert [len(p.items) for p in pages] == [5] * 20
    assert sorted(served) == sorted(f"j{i}" for i in range(20))


# --- the key stays out of logs over real sockets --------------------------------------------


async def test_key_not_in_debug_logs_of_failing_requests(
    sleeps: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    script: list[Action] = [
        Reply(http_response(503, b'{"detail":"busy"}')),
        Drop(),
        Reply(http_response(401, b'{"detail":"bad key"}')),
    ]
    async with RawServer(list(script)) as server, client_for(server.base_url, sleeps) as client:
        with pytest.raises(APIStatusError) as info:
            await client.job_items.list("bjb-1")
    assert info.value.status_code == 401
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert "-> 503" in caplog.text
    assert API_KEY not in caplog.text
    assert API_KEY not in str(info.value)


async def test_closed_transport_refuses_to_send() -> None:
    transport = AiohttpTransport(BatchClient(API_KEY).config)
    await transport.aclose()
    with pytest.raises(ClientClosedError, match="the client is closed"):
        await transport.send("GET", "/x", params={}, body=None)


async def test_cancelling_a_request_closes_the_client(sleeps: RecordingSleep) -> None:
    async with RawServer([Hang()]) as server:
        client = client_for(server.base_url, sleeps)

        async def use() -> None:
            async with client:
                await client.jobs.get("bjb-1")

        task = asyncio.create_task(use())
        for _ in range(500):  # wait (bounded) until the request is in flight
            if server.requests:
                break
            await asyncio.sleep(0.01)
        assert len(server.requests) == 1
        session = transport_of(client)._session
        assert session is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert session.closed
    assert repr(client).endswith("state=closed>")
    assert sleeps.delays == []


async def test_response_headers_are_a_plain_mapping_with_every_line() -> None:
    """Nothing above the transport sees aiohttp's header type: ``Response.headers``
    is ``_protocol.Headers`` (case-insensitive, read-only), repeated lines kept."""
    raw = (
        b"HTTP/1.1 429 Too Many\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"Retry-After: 4\r\nVia: 1.1 a\r\nvia: 1.1 b\r\nX-Request-Id: r1\r\n\r\n{}"
    )
    async with RawServer([Reply(raw)]) as server:
        transport = AiohttpTransport(BatchClient(API_KEY, base_url=server.base_url).config)
        try:
            resp = await transport.send("GET", "/x", params={}, body=None)
        finally:
            await transport.aclose()
    assert type(resp.headers) is proto.Headers
    assert (resp.status, resp.body, resp.framed) == (429, b"{}", True)
    assert resp.headers["retry-after"] == "4"
    assert resp.headers["X-REQUEST-ID"] == "r1"
    assert resp.headers.getall("Via") == ["1.1 a", "1.1 b"]
    assert all(type(k) is str for k in resp.headers)  # no aiohttp/multidict istr

"""Security (cases 23-26): redirects are never followed, the key never leaks,
TLS is verified by default, and hostile arguments stay where they belong.

The suite's conftest already fails any test whose DEBUG logs contain the key;
here the server also *tries* to make the client leak it, by echoing it back.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import aiohttp.connector
import msgspec
import pytest
import trustme
from _servers import Action, Drop, RawRequest, Reply, http_response, serve
from aiohttp import web

from aiobatch import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BatchClient,
    InternalServerError,
    PageFetchError,
    RateLimitError,
    ResponseDecodeError,
    TLSVerificationError,
)
from aiobatch.testing import SimJob

from .fault_support import (
    API,
    KEY,
    RawServer,
    VirtualClock,
    assert_no_secret,
    client,
    find_secret,
    simulator,
)

JOB = "bjb-faults-sec"


# --- 23. Redirects are not followed ------------------------------------------------------


class Thief:
    """A second server that records whatever reaches it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def app(self) -> web.Application:
        async def steal(request: web.Request) -> web.Response:
            self.seen.append(dict(request.headers))
            return web.json_response({"items": [], "job": {}})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", steal)
        return app


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_case23_redirect_to_another_host_is_refused(status: int) -> None:
    clock = VirtualClock()
    thief = Thief()
    async with serve(thief.app()) as thief_url:
        location = f"{thief_url}/steal?token=please"
        redirect = http_response(status, b"", {"Location": location})
        async with (
            RawServer([Reply(redirect)]) as server,
            client(server.base_url, clock) as c,
        ):
            with pytest.raises(APIStatusError) as info:
                await c.job_items.list(JOB)
            with pytest.raises(APIStatusError) as scan_info:  # nothing received: as itself
                async for _ in c.job_items.iter(JOB):
                    pass
            with pytest.raises(APIStatusError):
                await c.jobs.cancel(JOB)  # a POST is not re-sent elsewhere either
    assert thief.seen == []
    err = info.value
    assert err.status_code == status
    assert f"redirect to {location!r} not followed" in str(err)
    assert not isinstance(scan_info.value, PageFetchError)
    assert len(server.requests) == 3  # one each: a redirect is not retried either
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)
    assert clock.sleeps == []
    assert_no_secret(err, scan_info.value)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """Make ``ca`` trusted the way a system CA is: through aiohttp's default
    verifying context, which an owned session (``ssl=True``) uses."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    monkeypatch.setattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", ctx)
    return ca


def tls_server_context(ca: trustme.CA, *identities: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*identities).configure_cert(ctx)
    return ctx


async def test_case23_https_to_http_downgrade_is_refused(trusted: trustme.CA) -> None:
    clock = VirtualClock()
    thief = Thief()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(location=f"{thief_url}{request.path_qs}")

    app = web.Application()
    app.router.add_get(f"{API}/{{job_id}}/items", redirect)
    async with serve(thief.app()) as thief_url:
        assert thief_url.startswith("http://")
        ctx = tls_server_context(trusted, "127.0.0.1")
        async with serve(app, ssl=ctx) as url, client(url, clock) as c:
            assert url.startswith("https://")
            with pytest.raises(APIStatusError) as info:
                await c.job_items.list(JOB)
    assert info.value.status_code == 302
    assert "not followed" in str(info.value)
    assert thief.seen == []


# --- 24. The key never leaks, even when the server echoes it -----------------------------------


def echo(status: int, body: bytes = b"", **headers: str) -> Reply:
    return Reply(http_response(status, body, headers))


BEARER = f"Bearer {KEY}"
ECHO_BODY = msgspec.json.encode({"detail": f"invalid api key {KEY} (sent as '{BEARER}')"})

ECHOES: dict[str, tuple[list[Any], type[AiobatchError]]] = {
    "401 echoing in body and headers": (
        [
            echo(
                401,
                ECHO_BODY,
                **{
                    "WWW-Authenticate": f'Bearer error="invalid_token", token="{KEY}"',
                    "X-Echo-Authorization": BEARER,
                    "x-request-id": f"req-{KEY}",
                },
            )
        ],
        AuthenticationError,
    ),
    "500 echo, retried until exhausted": (
        [echo(500, ECHO_BODY, **{"X-Debug-Auth": BEARER})],
        InternalServerError,
    ),
    "429 with the key in Retry-After": (
        [echo(429, ECHO_BODY, **{"Retry-After": KEY, "retry-after-ms": KEY})],
        RateLimitError,
    ),
    "400 with the key JSON-escaped in detail": (
        [echo(400, b'{"detail": ["bad key", {"key": "\\u006c' + KEY[1:].encode() + b'"}]}')],
        APIStatusError,
    ),
    "302 with the key in Location": (
        [echo(302, b"", Location=f"http://evil.invalid/collect?k={KEY}")],
        APIStatusError,
    ),
    "200 that is not JSON, echoing": (
        [echo(200, f"<html>bad gateway for {BEARER}</html>".encode())],
        ResponseDecodeError,
    ),
    "200 with the key in a mistyped field": (
        [echo(200, msgspec.json.encode({"items": [{"item_id": 7, "item_name": KEY}]}))],
        ResponseDecodeError,
    ),
    "200 with the key as an unknown status": (
        [echo(200, msgspec.json.encode({"items": [{"item_id": KEY, "item_name": 3}]}))],
        ResponseDecodeError,
    ),
    "unframed echo cut mid-body": (
        [
            Drop(
                http_response(
                    200,
                    b'{"items": [{"item_id": "' + KEY.encode(),
                    {"Connection": "close"},
                    content_length=-1,
                )
            )
        ],
        APIConnectionError,
    ),
}


@pytest.mark.parametrize("case", list(ECHOES))
async def test_case24_key_echoed_by_the_server_never_leaks(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    script, expected = ECHOES[case]
    clock = VirtualClock()
    async with RawServer(list(script)) as server, client(server.base_url, clock) as c:
        with pytest.raises(expected) as info:
            await c.job_items.list(JOB)
        # Any error before the first item is raised as itself: the key is nowhere in it.
        with pytest.raises(expected) as scan_info:
            async for _ in c.job_items.iter(JOB, concurrency=2):
                pass
        for text in (repr(c), str(c), repr(c.config), str(c.config), repr(c._transport)):
            assert KEY not in text
    assert server.requests[0].headers["authorization"] == BEARER  # it was sent...
    for err in (info.value, scan_info.value):
        assert_no_secret(err)  # ...and comes back nowhere
        assert KEY not in repr(err)
    assert KEY not in caplog.text


async def test_case24_key_never_in_logs_repr_or_errors_across_a_faulty_scan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aiobatch.testing import Faults, Trigger

    faults = Faults(
        rate_limit=Trigger(every=5),
        retry_after="0",
        server_error=Trigger(every=7),
        truncate=Trigger(every=11),
        html=Trigger(offsets={1900: 1}),
    )
    clock = VirtualClock()
    async with (
        simulator([SimJob(job_id=JOB, total_items=2000)], faults=faults) as sim,
        client(sim.base_url, clock) as c,
    ):
        pages = c.job_items.iter_pages(JOB, page_size=100, concurrency=8)
        with pytest.raises(PageFetchError) as info:
            async for _ in pages:
                pass
        assert_no_secret(info.value, pages.progress, c.config.retry)
        # The config holds the key (it has to), but never shows it.
        assert KEY not in repr(c.config)
        assert KEY not in str(c.config.api_key)
    assert isinstance(info.value.error, ResponseDecodeError)
    assert "retrying" in caplog.text  # DEBUG logging really was on
    assert KEY not in caplog.text


# --- 25. TLS: untrusted or wrong-hostname certificates are rejected ----------------------------


def ok_app(hits: list[str]) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        hits.append(request.headers.get("Authorization", ""))
        return web.json_response({"items": [], "total_size": 0})

    app = web.Application()
    app.router.add_get(f"{API}/{{job_id}}/items", handler)
    return app


async def test_case25_self_signed_certificate_is_rejected(ca: trustme.CA) -> None:
    clock = VirtualClock()
    hits: list[str] = []
    ctx = tls_server_context(ca, "127.0.0.1")  # a CA nobody trusts
    async with serve(ok_app(hits), ssl=ctx) as url, client(url, clock) as c:
        with pytest.raises(TLSVerificationError) as info:
            await c.job_items.list(JOB)
        with pytest.raises(TLSVerificationError) as scan_info:  # nothing received: as itself
            async for _ in c.job_items.iter(JOB):
                pass
    assert "certificate verify failed" in str(info.value)
    assert info.value.request_sent is False
    assert hits == []  # no request (and no key) ever crossed
    assert clock.sleeps == []  # and it is not retried
    assert_no_secret(info.value, scan_info.value)


@pytest.mark.parametrize("identity", ["api.cloud.llamaindex.ai", "127.0.0.2", "localhost"])
async def test_case25_wrong_hostname_is_rejected(trusted: trustme.CA, identity: str) -> None:
    clock = VirtualClock()
    hits: list[str] = []
    ctx = tls_server_context(trusted, identity)  # trusted CA, another name
    async with serve(ok_app(hits), ssl=ctx) as url, client(url, clock) as c:
        assert "127.0.0.1" in url
        with pytest.raises(TLSVerificationError) as info:
            await c.job_items.list(JOB)
    assert "mismatch" in str(info.value)
    assert hits == []
    assert clock.sleeps == []


async def test_case25_control_the_right_certificate_is_accepted(trusted: trustme.CA) -> None:
    clock = VirtualClock()
    hits: list[str] = []
    ctx = tls_server_context(trusted, "127.0.0.1")
    async with serve(ok_app(hits), ssl=ctx) as url, client(url, clock) as c:
        page = await c.job_items.list(JOB)
    assert page.items == []
    assert hits == [BEARER]


async def test_case25_expired_certificate_is_rejected(trusted: trustme.CA) -> None:
    import datetime

    clock = VirtualClock()
    hits: list[str] = []
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    trusted.issue_cert(
        "127.0.0.1", not_before=past, not_after=past + datetime.timedelta(days=1)
    ).configure_cert(ctx)
    async with serve(ok_app(hits), ssl=ctx) as url, client(url, clock) as c:
        with pytest.raises(TLSVerificationError, match="expired"):
            await c.job_items.list(JOB)
    assert hits == []


# --- 26. Hostile arguments stay in their place -------------------------------------------------

HOSTILE_IDS = [
    "../",
    "..",
    ".",
    "../../etc/passwd",
    "%2F",
    "..%2F..%2F",
    "%2e%2e",
    "a/b",
    "?x=1",
    "x?limit=99999&offset=0",
    "#frag",
    "a b",
    "a;b=c",
    "a\\b",
    "~user",
    "бjb-ü/日本",
    "\u2028line-sep",
    "\u0085nel",
    "\ufeffbom",
    "%00",
    "@evil.example",
    "//evil.example/x",
    "http://evil.example/",
]
REJECTED_IDS = ["", "   ", "a\r\nX-Injected: 1", "a\nb", "a\rb", "\x00", "a\tb", "\x7f", "\ud800"]


def segment_of(request: RawRequest, template: str) -> str:
    """The path parameter of ``request``, decoded, checking the path's shape."""
    target = request.target
    parts = urlsplit(target)
    assert parts.scheme == parts.netloc == parts.fragment == ""
    head, _, tail = template.partition("{}")
    assert parts.path.startswith(head), target
    assert parts.path.endswith(tail), target
    raw = parts.path[len(head) : len(parts.path) - len(tail)]
    assert not set("/?#") & set(raw), target
    return unquote(raw)


Call = Callable[[BatchClient, str], Awaitable[Any]]


async def _items_list(c: BatchClient, v: str) -> Any:
    return await c.job_items.list(v)


async def _items_iter(c: BatchClient, v: str) -> Any:
    return [i async for i in c.job_items.iter(v)]


async def _items_status_iter(c: BatchClient, v: str) -> Any:
    return [i async for i in c.job_items.iter(v, status="failed", filter_mode="server")]


async def _results(c: BatchClient, v: str) -> Any:
    return await c.job_items.get_processing_results(v)


async def _job_get(c: BatchClient, v: str) -> Any:
    return await c.jobs.get(v)


async def _job_cancel(c: BatchClient, v: str) -> Any:
    return await c.jobs.cancel(v, reason=v)


CALLS: dict[str, tuple[Call, str, bytes]] = {
    "job_items.list": (_items_list, API + "/{}/items", b'{"items": [], "total_size": 0}'),
    "job_items.iter": (_items_iter, API + "/{}/items", b'{"items": [], "total_size": 0}'),
    "job_items.iter(status)": (
        _items_status_iter,
        API + "/{}/items",
        b'{"items": [], "total_size": 0}',
    ),
    "get_processing_results": (
        _results,
        API + "/items/{}/processing-results",
        b'{"item_id": "i", "item_name": "n"}',
    ),
    "jobs.get": (
        _job_get,
        API + "/{}",
        msgspec.json.encode(
            {
                "job": {
                    "id": "j",
                    "job_type": "parse",
                    "project_id": "p",
                    "status": "completed",
                    "total_items": 0,
                },
                "progress_percentage": 100.0,
            }
        ),
    ),
    "jobs.cancel": (
        _job_cancel,
        API + "/{}/cancel",
        b'{"job_id": "j", "message": "m", "processed_items": 0, "status": "cancelled"}',
    ),
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_case26_hostile_path_parameters_stay_in_their_segment(call: str) -> None:
    fn, template, body = CALLS[call]
    clock = VirtualClock()
    async with (
        RawServer([Reply(http_response(body=body))]) as server,
        client(server.base_url, clock) as c,
    ):
        for value in HOSTILE_IDS:
            if value in (".", ".."):
                with pytest.raises(ValueError, match="must not be"):
                    await fn(c, value)
                continue
            server.requests.clear()
            await fn(c, value)
            assert server.requests, value
            for request in server.requests:
                assert segment_of(request, template) == value
                query = parse_qs(urlsplit(request.target).query)
                assert set(query) <= {"limit", "offset", "status"}, request.target
                assert "x-injected" not in request.headers
        server.requests.clear()
        for value in REJECTED_IDS:
            with pytest.raises(ValueError, match=r"^(job_id|item_id) must") as info:
                await fn(c, value)
            assert_no_secret(info.value)
    assert server.requests == []  # a rejected argument never reaches the network


INJECTIONS = [
    "x\r\nX-Injected: 1",
    "x\nX-Injected: 1",
    "x\rX-Injected: 1",
    "x\x00y",
    "x\ud800y",
]


@pytest.mark.parametrize("value", INJECTIONS)
async def test_case26_no_header_or_query_injection_through_any_argument(value: str) -> None:
    clock = VirtualClock()
    job = b'{"id": "bjb-1", "job_type": "parse", "project_id": "p", "status": "pending", '
    job += b'"total_items": 1}'
    async with (
        RawServer([Reply(http_response(status=201, body=job))]) as server,
        client(server.base_url, clock) as c,
    ):
        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: c.job_items.list(JOB, organization_id=value),
            lambda: c.job_items.list(JOB, project_id=value),
            lambda: c.jobs.list(directory_id=value),
            lambda: c.jobs.get(JOB, project_id=value),
            lambda: c.jobs.create(job_config={}, directory_id=value),
        ]
        names = r"^(organization_id|project_id|directory_id) must"
        for attempt in attempts:
            with pytest.raises(ValueError, match=names):
                await attempt()
        assert server.requests == []
        # An id in a JSON body is harmless (issue 23): sent as it is, JSON-escaped;
        # only text that cannot be encoded at all is refused.
        if "\ud800" in value:
            with pytest.raises(ValueError, match=r"^item_ids\[\] must"):
                await c.jobs.create(job_config={}, item_ids=[value], project_id="p")
        else:
            await c.jobs.create(job_config={}, item_ids=[value], project_id="p")
            [sent] = server.requests
            assert msgspec.json.decode(sent.body)["item_ids"] == [value]
            assert b"\r" not in sent.body
            assert b"\n" not in sent.body
            assert "x-injected" not in sent.headers
            server.requests.clear()
        with pytest.raises(ValueError, match="the API key contains"):
            BatchClient(value, base_url=server.base_url)
        with pytest.raises(ValueError, match=r"^project_id must"):
            BatchClient(KEY, base_url=server.base_url, project_id=value)._scope(None, None)


async def test_case26_query_values_are_escaped_not_interpreted() -> None:
    clock = VirtualClock()
    nasty = "p&limit=1&offset=999#x y+z=%41\u2028"
    replies: list[Action] = [
        Reply(http_response(body=b'{"items": [], "total_size": 0}')),
        Reply(http_response(body=CALLS["jobs.cancel"][2])),
    ]
    async with (
        RawServer(replies) as server,
        client(server.base_url, clock, organization_id=nasty) as c,
    ):
        await c.job_items.list(JOB, project_id=nasty, limit=5, offset=0)
        await c.jobs.cancel(JOB, reason='r\r\nX-Injected: 1"}')
    [listing, cancel] = server.requests
    query = parse_qs(urlsplit(listing.target).query, keep_blank_values=True)
    assert query == {
        "limit": ["5"],
        "offset": ["0"],
        "organization_id": [nasty],
        "project_id": [nasty],
    }
    # A free-text argument travels JSON-encoded in the body, never as a header.
    assert msgspec.json.decode(cancel.body) == {"reason": 'r\r\nX-Injected: 1"}'}
    assert "x-injected" not in cancel.headers


def test_case24_the_secret_walker_sees_nested_leaks() -> None:
    """The control for every "no secret" check of the suite: a key hidden deep in
    attributes, mappings, slots, causes and contexts is found."""

    class Holder:
        __slots__ = ("inner",)

        def __init__(self, inner: object) -> None:
            self.inner = inner

    class Probe(Exception):
        pass

    inner = ValueError("context")
    inner.__context__ = KeyError(("k", {"deep": [Holder(f"Bearer {KEY}")]}))
    outer = Probe("outer")
    outer.__cause__ = inner
    outer.headers = {"X-Echo": KEY.encode()}  # type: ignore[attr-defined]
    found = find_secret(outer)
    assert "obj.headers['X-Echo']" in found
    assert any(".__cause__.__context__.args" in where for where in found)
    assert find_secret(Probe("clean")) == []

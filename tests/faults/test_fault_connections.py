"""Connections and bodies (cases 8-16): refused, idle keep-alive closes, broken
framing, non-JSON 200s, slow bodies, pool exhaustion, huge and hostile bodies.

The simulator breaks framing on purpose; where it cannot misbehave enough,
small loopback servers do (``tests/_servers.py`` and aiohttp apps here).
Timeouts are small (a few hundred ms) and bounds are generous: these tests
prove "does not hang", benchmarks measure speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
import pytest
from _servers import Action, Drop, Hang, Reply, http_response, unused_port
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiobatch import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    Limits,
    ResponseDecodeError,
    ResponseTooLargeError,
    Timeout,
)
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

from .fault_support import (
    API,
    KEY,
    RawServer,
    Recorder,
    VirtualClock,
    assert_exact,
    assert_no_secret,
    client,
    ids,
    simulator,
    wait_until,
)

JOB = "bjb-faults-conn"


def job(n: int = 2000, seed: int = 2) -> SimJob:
    return SimJob(job_id=JOB, total_items=n, seed=seed)


def one_fault(name: str, trigger: Trigger) -> Faults:
    kw: dict[str, Any] = {name: trigger}
    return Faults(**kw)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, **runner_kw: Any) -> AsyncIterator[str]:
    """``app`` on 127.0.0.1 with runner options (e.g. ``keepalive_timeout``)."""
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server(**runner_kw)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def page_body(start: int, n: int, total: int) -> bytes:
    items = [
        {"item_id": f"itm-{i:06d}", "item_name": f"doc-{i}.pdf", "status": "completed"}
        for i in range(start, min(total, start + n))
    ]
    return msgspec.json.encode({"items": items, "total_size": total})


# --- 8. Connection refused -------------------------------------------------------------


async def test_case08_connection_refused_is_retried_then_raised() -> None:
    clock = VirtualClock()
    url = f"http://127.0.0.1:{unused_port()}"
    async with client(url, clock, max_retries=3) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.job_items.list(JOB)
        assert clock.sleeps == [0.5, 1.0, 2.0]  # max_retries waits: 4 attempts
        clock.sleeps.clear()
        # Nothing received: the scan raises the cause itself (issue 20 case 8).
        with pytest.raises(APIConnectionError) as scan_info:
            async for _ in c.job_items.iter(JOB, concurrency=4):
                pass
    err = info.value
    assert type(err) is APIConnectionError
    assert err.request_sent is False
    assert "cannot connect to 127.0.0.1" in str(err)
    assert type(scan_info.value) is APIConnectionError
    assert len(clock.sleeps) >= 3
    assert_no_secret(err, scan_info.value)


# --- 9. Idle keep-alive connections closed by the server ------------------------------------


async def test_case09_server_closing_idle_keepalive_connections_is_invisible() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    sim = Simulator([job(800)], api_key=KEY)
    sim.app.middlewares.insert(0, rec.middleware)
    # The server drops a connection idle for 50 ms; the consumer pauses 120 ms a page.
    async with serve_app(sim.app, keepalive_timeout=0.05) as url, client(url, clock) as c:
        got: list[str] = []
        async for page in c.job_items.iter_pages(JOB, page_size=100, concurrency=1):
            got.extend(ids(page.items))
            await asyncio.sleep(0.12)
        for _ in range(2):  # single calls after idling too
            await asyncio.sleep(0.12)
            assert len((await c.job_items.list(JOB, limit=2)).items) == 2
    assert_exact(got, sim.item_ids(JOB))
    assert clock.sleeps == []  # nothing failed, nothing was retried
    assert len({s.peer for s in rec.seen}) > 3  # the server really closed connections


async def test_case09_connection_closed_as_the_next_request_arrives() -> None:
    """The race behind idle closes: the server takes the request, then hangs up."""
    clock = VirtualClock()
    total = 30
    script: list[Action] = [
        Reply(http_response(body=page_body(0, 10, total))),
        Drop(),  # the reused connection dies under the second request
        Reply(http_response(body=page_body(10, 10, total))),
        Drop(),
        Reply(http_response(body=page_body(20, 10, total))),
    ]
    async with RawServer(script) as server, client(server.base_url, clock) as c:
        got: list[str] = []
        for offset in (0, 10, 20):
            got.extend(ids((await c.job_items.list(JOB, limit=10, offset=offset)).items))
    assert_exact(got, [f"itm-{i:06d}" for i in range(total)])
    assert len(server.requests) == 5
    assert server.connections == 3
    assert clock.sleeps == []  # aiohttp's one replay of an idempotent request covered it


# --- 10. Broken framing: the page is retried, never yielded half -----------------------------


@pytest.mark.parametrize("fault", ["reset_mid_body", "truncate", "chunked_cut", "unframed_cut"])
async def test_case10_broken_body_mid_scan_is_refetched(fault: str) -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = one_fault(fault, Trigger(offsets={600: 1, 1400: 2}))
    async with (
        simulator([job()], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        got = [i.item_id async for i in c.job_items.iter(JOB, page_size=200, concurrency=4)]
        assert_exact(got, sim.item_ids(JOB))
        assert sim.stats.faults().count(fault) == 3
    assert [s.status for s in rec.at(600)][-1] == 200
    assert [s.status for s in rec.at(1400)][-1] == 200
    assert len(rec.at(600)) == 2
    assert len(rec.at(1400)) == 3


@pytest.mark.parametrize("fault", ["reset_mid_body", "truncate", "chunked_cut", "unframed_cut"])
async def test_case10_broken_body_every_time_is_a_connection_error(fault: str) -> None:
    clock = VirtualClock()
    faults = one_fault(fault, Trigger.always())
    async with simulator([job(300)], faults=faults) as sim, client(sim.base_url, clock) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.job_items.list(JOB, limit=100)
    assert len(clock.sleeps) == 5
    assert_no_secret(info.value)


# --- 11. A 200 that is not JSON ---------------------------------------------------------------


async def test_case11_html_maintenance_page_on_200() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(html=Trigger.always())
    async with (
        simulator([job(300)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await c.job_items.list(JOB)
        with pytest.raises(ResponseDecodeError) as scan_info:  # nothing received: as itself
            async for _ in c.job_items.iter(JOB):
                pass
    err = info.value
    assert err.status == 200
    assert err.snippet.startswith("<!DOCTYPE html><html><head><title>Service maintenance")
    assert len(err.snippet) <= 201
    assert "200 body is not valid JSON" in str(err)
    assert [s.status for s in rec.items()] == [200, 200]  # not retried
    assert_no_secret(err, scan_info.value)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"items": [{"item_id": "a", oops}]}', "is not valid JSON"),
        (b"<html>" + b"x" * 100_000 + b"</html>", "is not valid JSON"),
        (b'{"items": "not a list"}', "does not match"),
        (b"\xff\xfe\x00garbage", "is not valid JSON"),
        (b"", "is not valid JSON"),
    ],
)
async def test_case11_invalid_json_on_200(body: bytes, kind: str) -> None:
    clock = VirtualClock()
    async with (
        RawServer([Reply(http_response(body=body))]) as server,
        client(server.base_url, clock) as c,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await c.job_items.list(JOB)
    err = info.value
    assert err.status == 200
    assert kind in str(err)
    assert len(err.snippet) <= 201
    assert len(str(err)) < 1000  # a short message, even for a 100 kB page
    assert len(server.requests) == 1


# --- 12. Slow bodies and silent servers: timeouts fire -----------------------------------------


async def test_case12_body_trickling_one_byte_a_second_hits_the_read_timeout() -> None:
    clock = VirtualClock()
    faults = Faults(trickle=Trigger.always(), trickle_bytes_per_sec=1.0)
    async with simulator([job(300)], faults=faults) as sim:
        timeout = Timeout(total=30, connect=5, read=0.3)
        async with client(sim.base_url, clock, timeout=timeout, max_retries=1) as c:
            started = time.monotonic()
            with pytest.raises(APITimeoutError) as info:
                await c.job_items.list(JOB, limit=5)
            elapsed = time.monotonic() - started
    assert "SocketTimeoutError" in str(info.value)
    assert elapsed < 5  # two attempts of ~0.3 s, generously bounded
    assert clock.sleeps == [0.5]


async def test_case12_steady_trickle_hits_the_total_timeout() -> None:
    clock = VirtualClock()
    # 2 bytes every 50 ms: the read timeout never fires, the total one must.
    faults = Faults(trickle=Trigger.always(), trickle_bytes_per_sec=40.0)
    async with simulator([job(300)], faults=faults) as sim:
        timeout = Timeout(total=0.4, connect=5, read=0.3)
        async with client(sim.base_url, clock, timeout=timeout, max_retries=1) as c:
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                await c.job_items.list(JOB, limit=5)
            elapsed = time.monotonic() - started
    assert elapsed < 5


@pytest.mark.parametrize(
    "budget", [Timeout(total=0.3), Timeout(total=None, connect=None, read=0.3)]
)
async def test_case12_server_that_never_answers(budget: Timeout) -> None:
    clock = VirtualClock()
    async with (
        RawServer([Hang()]) as server,
        client(server.base_url, clock, timeout=budget, max_retries=2) as c,
    ):
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:  # nothing received: as itself
            async for _ in c.job_items.iter(JOB, concurrency=2):
                pass
        elapsed = time.monotonic() - started
    assert elapsed < 10
    assert_no_secret(info.value)


# --- 13. A burst of timeouts, then recovery ---------------------------------------------------


async def test_case13_timeout_burst_does_not_poison_the_pool() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(trickle=Trigger(after=1, first=6), trickle_bytes_per_sec=1.0)
    timeout = Timeout(total=10, connect=5, read=0.2)
    async with (
        simulator([job()], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock, timeout=timeout) as c,
    ):
        got = [i.item_id async for i in c.job_items.iter(JOB, page_size=200, concurrency=4)]
        assert_exact(got, sim.item_ids(JOB))
        assert len(clock.sleeps) == 6  # one retry per timeout, no more
        # Afterwards: plain calls succeed at once, over reused connections.
        rec.seen.clear()
        for offset in range(0, 2000, 100):
            page = await c.job_items.list(JOB, limit=100, offset=offset)
            assert ids(page.items) == sim.item_ids(JOB)[offset : offset + 100]
        # The trickling handlers notice the hang-up on their next byte.
        await wait_until(lambda: sim.stats.in_flight == 0)
        assert sim.stats.faults().count("trickle") == 6
    assert len(clock.sleeps) == 6
    # Served over a handful of healthy keep-alive connections, not one per call.
    assert len({s.peer for s in rec.seen}) <= 4


# --- 14. More concurrency than connections -----------------------------------------------------


async def test_case14_concurrency_above_the_pool_size_does_not_deadlock() -> None:
    clock = VirtualClock()
    faults = Faults(latency_ms=40)
    # Each page takes 40 ms and only 2 connections exist, so the 16th request
    # queues ~300 ms for a connection: longer than the connect and total timeouts.
    timeout = Timeout(total=0.25, connect=0.1, read=0.25)
    async with simulator([job(2400)], faults=faults) as sim:
        limits = Limits(max_connections=2)
        async with client(sim.base_url, clock, limits=limits, timeout=timeout) as c:
            with anyio.fail_after(20):
                got = [
                    i.item_id async for i in c.job_items.iter(JOB, page_size=100, concurrency=16)
                ]
        assert_exact(got, sim.item_ids(JOB))
        assert sim.stats.peak_in_flight <= 2
    # Waiting for a pooled connection is not a timeout: nothing was retried.
    assert clock.sleeps == []


# --- 15. Huge and endless bodies ----------------------------------------------------------------


CAP = 1024 * 1024


async def test_case15_absurd_content_length_is_refused_unread() -> None:
    clock = VirtualClock()
    reply = http_response(body=b'{"items": [', content_length=10_000_000_000)
    async with (
        RawServer([Drop(reply)]) as server,
        client(server.base_url, clock, limits=Limits(max_body_bytes=CAP)) as c,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await c.job_items.list(JOB)
    assert "Content-Length 10000000000 exceeds" in str(info.value)
    assert info.value.limit == CAP
    assert len(server.requests) == 1  # not retried
    assert clock.sleeps == []


def endless_app(mode: str) -> web.Application:
    """Streams a body that never ends, as fast as the client reads it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        chunk = b" " * 65536
        if mode == "gzip":
            resp.headers["Content-Encoding"] = "gzip"
            z = zlib.compressobj(9, zlib.DEFLATED, 31)
            head = z.compress(b'{"items": [') + z.flush(zlib.Z_SYNC_FLUSH)
            # 1 MiB of spaces compresses to about 1 kB: a bomb that never ends.
            chunk = z.compress(b" " * (1 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)
        elif mode == "unframed":
            resp.force_close()
            head = b'{"items": ['
        else:
            head = b'{"items": ['
        if mode != "unframed":
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            await resp.write(head)
            while True:
                await resp.write(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up: what we want
        return resp

    app = web.Application()
    app.router.add_get(f"{API}/{{job_id}}/items", handler)
    return app


@pytest.mark.parametrize("mode", ["chunked", "unframed", "gzip"])
async def test_case15_endless_body_is_cut_at_the_cap(mode: str) -> None:
    clock = VirtualClock()
    async with (
        serve_app(endless_app(mode)) as url,
        client(url, clock, limits=Limits(max_body_bytes=CAP)) as c,
    ):
        before = rss_bytes()
        for _ in range(3):
            with anyio.fail_after(20), pytest.raises(ResponseTooLargeError) as info:
                await c.job_items.list(JOB)
            assert "body (after decompression) exceeds the 1048576-byte cap" in str(info.value)
        grown = rss_bytes() - before
    assert grown < 64 * 1024 * 1024, f"RSS grew by {grown} bytes"
    assert clock.sleeps == []


async def test_case15_gzip_bomb_with_content_length_is_cut_at_the_cap() -> None:
    clock = VirtualClock()
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(b'{"items": [')]
    block = b"0," * (1 << 19)
    parts += [z.compress(block) for _ in range(256)]  # 256 MiB inflated
    bomb = b"".join(parts) + z.flush()
    assert len(bomb) < 2 * 1024 * 1024
    reply = http_response(body=bomb, headers={"Content-Encoding": "gzip"})
    async with (
        RawServer([Reply(reply)]) as server,
        client(server.base_url, clock, limits=Limits(max_body_bytes=CAP)) as c,
    ):
        before = rss_bytes()
        with pytest.raises(ResponseTooLargeError, match="after decompression"):
            await c.job_items.list(JOB)
        grown = rss_bytes() - before
    assert grown < 64 * 1024 * 1024, f"RSS grew by {grown} bytes"
    assert len(server.requests) == 1


# --- 16. Pathologically nested JSON ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"items": ' + b"[" * 100_000,
        b'{"items": [{"item_id": ' + b'{"a": ' * 100_000,
        b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
async def test_case16_deep_nesting_on_200_is_a_decode_error(body: bytes) -> None:
    clock = VirtualClock()
    async with (
        RawServer([Reply(http_response(body=body))]) as server,
        client(server.base_url, clock) as c,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await c.job_items.list(JOB)
        # The process (and the client) survive: the next call works.
        with pytest.raises(ResponseDecodeError):
            await c.jobs.get("bjb-1")
    assert info.value.status == 200
    assert len(info.value.snippet) <= 201


async def test_case16_deep_nesting_in_an_error_body() -> None:
    clock = VirtualClock()
    body = b'{"detail": ' + b"[" * 100_000
    async with (
        RawServer([Reply(http_response(400, body))]) as server,
        client(server.base_url, clock) as c,
    ):
        with pytest.raises(BadRequestError) as info:
            await c.job_items.list(JOB)
    assert info.value.detail is None
    assert len(str(info.value)) < 1000


async def test_case16_deep_nesting_in_an_unframed_body_is_retried_as_truncation() -> None:
    clock = VirtualClock()
    cut = http_response(body=b"[" * 100_000, content_length=-1, headers={"Connection": "close"})
    ok = http_response(body=page_body(0, 3, 3))
    async with RawServer([Drop(cut), Reply(ok)]) as server, client(server.base_url, clock) as c:
        page = await c.job_items.list(JOB)
    assert len(page.items) == 3
    assert clock.sleeps == [0.5]

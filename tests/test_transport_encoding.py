"""Content codings: the client asks only for what it can decode, and a body it
cannot decode is a typed, non-retried decode error, not a "connection failed".

A ``br`` body sent unasked used to surface as aiohttp's ClientResponseError, which
the transport mapped to APIConnectionError: retried six times, then reported as a
network problem.  Loopback servers only: aiohttp's own parser must see the bytes.
"""

from __future__ import annotations

import gzip
import zlib

import pytest
from _servers import RawServer, RecordingSleep, Reply, http_response, serve
from aiohttp import web
from aiohttp.compression_utils import HAS_BROTLI
from conftest import API_KEY

from aiobatch import (
    BatchClient,
    ContentEncodingError,
    ResponseDecodeError,
    RetryPolicy,
)
from aiobatch._transport import ACCEPT_ENCODINGS

pytestmark = pytest.mark.usefixtures("no_env")

GARBAGE = b"\x8b\x00\xffnot-brotli-not-anything\x00" * 8
PAGE = b'{"items": [], "total_size": 0}'


def client_for(base_url: str, sleeps: RecordingSleep) -> BatchClient:
    return BatchClient(
        API_KEY, base_url=base_url, retry=RetryPolicy(sleep=sleeps, random=lambda: 0.0)
    )


def encoded_app(
    encoding: str, body: bytes, hits: list[web.Request], status: int = 200
) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        hits.append(request)
        return web.Response(
            body=body,
            status=status,
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def test_accept_encoding_lists_only_what_aiohttp_decodes_here() -> None:
    assert ACCEPT_ENCODINGS[:2] == ("gzip", "deflate")
    assert ("br" in ACCEPT_ENCODINGS) == HAS_BROTLI
    assert set(ACCEPT_ENCODINGS) <= {"gzip", "deflate", "br", "zstd"}


async def test_request_sends_an_explicit_accept_encoding(sleeps: RecordingSleep) -> None:
    async with (
        RawServer([Reply(http_response(body=PAGE))]) as server,
        client_for(server.base_url, sleeps) as client,
    ):
        await client.job_items.list("bjb-1")
    [req] = server.requests
    assert req.headers["accept-encoding"] == ", ".join(ACCEPT_ENCODINGS)


@pytest.mark.skipif(HAS_BROTLI, reason="aiohttp can decode br here: it is no longer unasked")
@pytest.mark.parametrize("status", [200, 503])
async def test_unasked_br_body_is_a_decode_error_not_retried(
    sleeps: RecordingSleep, status: int
) -> None:
    hits: list[web.Request] = []
    async with (
        serve(encoded_app("br", GARBAGE, hits, status)) as url,
        client_for(url, sleeps) as client,
    ):
        with pytest.raises(ContentEncodingError) as info:
            await client.job_items.list("bjb-1")
    err = info.value
    assert isinstance(err, ResponseDecodeError)
    assert err.encoding == "br"
    assert "'br'" in str(err)
    assert "did not ask for" in str(err)
    assert "connection failed" not in str(err)
    assert API_KEY not in repr(err.__cause__)
    assert API_KEY not in str(err)
    assert len(hits) == 1  # no retry
    assert sleeps.delays == []
    assert hits[0].headers["Accept-Encoding"] == ", ".join(ACCEPT_ENCODINGS)


@pytest.mark.parametrize("encoding", ["compress", "x-custom", "gzip, br", "gzip, gzip"])
async def test_codings_aiohttp_passes_through_undecoded_are_refused(
    sleeps: RecordingSleep, encoding: str
) -> None:
    """aiohttp decodes one coding it knows and hands anything else over still
    encoded; the client must not take those bytes for JSON (or a truncation)."""
    hits: list[web.Request] = []
    async with (
        serve(encoded_app(encoding, gzip.compress(PAGE), hits)) as url,
        client_for(url, sleeps) as client,
    ):
        with pytest.raises(ContentEncodingError, match="did not ask for") as info:
            await client.job_items.list("bjb-1")
    assert info.value.encoding == encoding
    assert info.value.status == 200
    assert repr(encoding) in str(info.value)
    assert len(hits) == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_corrupt_compressed_data_is_a_decode_error_not_retried(
    sleeps: RecordingSleep, encoding: str
) -> None:
    hits: list[web.Request] = []
    async with (
        serve(encoded_app(encoding, GARBAGE, hits)) as url,
        client_for(url, sleeps) as client,
    ):
        with pytest.raises(ContentEncodingError, match=f"not valid {encoding} data") as info:
            await client.job_items.list("bjb-1")
    assert info.value.encoding == encoding
    assert info.value.status == 200
    assert len(hits) == 1


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(PAGE)),
        ("GZIP", gzip.compress(PAGE)),
        ("deflate", zlib.compress(PAGE)),
        ("identity", PAGE),
    ],
)
async def test_accepted_codings_still_decode(
    sleeps: RecordingSleep, encoding: str, body: bytes
) -> None:
    hits: list[web.Request] = []
    async with (
        serve(encoded_app(encoding, body, hits)) as url,
        client_for(url, sleeps) as client,
    ):
        page = await client.job_items.list("bjb-1")
    assert page.items == []
    assert page.total_size == 0


@pytest.mark.skipif(HAS_BROTLI, reason="aiohttp can decode br here")
async def test_scan_fails_once_with_the_encoding_error(sleeps: RecordingSleep) -> None:
    hits: list[web.Request] = []
    async with (
        serve(encoded_app("br", GARBAGE, hits)) as url,
        client_for(url, sleeps) as client,
    ):
        # Nothing received: the scan raises the cause itself (issue 20 case 8).
        with pytest.raises(ContentEncodingError):
            async for _ in client.job_items.iter("bjb-1"):
                pass
    assert len(hits) == 1

"""Webhook deliveries: signature checks over the raw bytes, typed events, and a
real loopback aiohttp.web server receiving a signed delivery."""

from __future__ import annotations

import hashlib
import hmac
import json

import aiohttp
import pytest
from aiohttp import web

from aiobatch import AiobatchError, WebhookPayloadError, WebhookVerificationError, webhooks
from aiobatch.webhooks import SIGNATURE_HEADER, WebhookEvent, WebhookEventType

SECRET = "whsec-TOP-SECRET-0123456789"
BODY = (
    b'{"event_type":"batch.success","event_id":"evt-1","timestamp":"2026-01-02T03:04:05Z",'
    b'"data":{"id":"bat-123","status":"COMPLETED"}}'
)


def sig(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


GOOD = sig(BODY)
UNICODE = '{"event_type":"batch.error","data":{"id":"bat-é","error":"ファイル ✗ \u2028"}}'.encode()


def test_sign_matches_an_independent_hmac() -> None:
    assert webhooks.sign(BODY, SECRET) == GOOD
    webhooks.verify(BODY, GOOD, SECRET)


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        pytest.param(BODY, GOOD, id="good"),
        pytest.param(BODY, GOOD.upper().replace("SHA256=", "sha256="), id="uppercase-hex"),
        pytest.param(BODY, "  " + GOOD + " ", id="surrounding-space"),
        pytest.param(UNICODE, sig(UNICODE), id="unicode-body"),
        pytest.param(b"", sig(b""), id="empty-body"),
    ],
)
def test_valid_signatures_pass(body: bytes, signature: str) -> None:
    webhooks.verify(body, signature, SECRET)


def _flip(hexdigest: str) -> str:
    last = hexdigest[-1]
    return hexdigest[:-1] + ("0" if last != "0" else "1")


def _reencoded(body: bytes) -> bytes:
    # What a framework hands over after request.json(): same data, other bytes.
    return json.dumps(json.loads(body)).encode()


@pytest.mark.parametrize(
    ("body", "signature", "match"),
    [
        pytest.param(BODY + b" ", GOOD, "does not match", id="tampered-body"),
        pytest.param(BODY.replace(b"success", b"error  "), GOOD, "does not match", id="swapped"),
        pytest.param(BODY, _flip(GOOD), "does not match", id="tampered-signature"),
        pytest.param(BODY, sig(BODY, "another-secret"), "does not match", id="other-secret"),
        pytest.param(_reencoded(BODY), GOOD, "re-encoded", id="re-encoded-json"),
        pytest.param(_reencoded(UNICODE), sig(UNICODE), "does not match", id="re-encoded-unicode"),
        pytest.param(BODY, None, "missing", id="missing"),
        pytest.param(BODY, "", "missing", id="empty"),
        pytest.param(BODY, GOOD.removeprefix("sha256="), "malformed", id="no-prefix"),
        pytest.param(BODY, "sha1=" + GOOD[7:], "malformed", id="wrong-scheme"),
        pytest.param(BODY, GOOD[:-2], "64 hex characters, got 62", id="short"),
        pytest.param(BODY, GOOD + "00", "64 hex characters, got 66", id="long"),
        pytest.param(BODY, GOOD[:-1] + "g", "not hexadecimal", id="non-hex"),
        pytest.param(BODY, "sha256=" + "é" * 64, "not hexadecimal", id="non-ascii"),
        pytest.param(BODY, "sha256=" + "٣" * 64, "not hexadecimal", id="unicode-digits"),
    ],
)
def test_bad_deliveries_are_refused(body: bytes, signature: str | None, match: str) -> None:
    with pytest.raises(WebhookVerificationError, match=match) as info:
        webhooks.verify(body, signature, SECRET)
    text = str(info.value) + repr(info.value)
    assert SECRET not in text
    assert webhooks.sign(body, SECRET)[7:] not in text  # nor the digest it expected
    assert isinstance(info.value, AiobatchError)


def test_only_raw_bytes_and_a_real_secret_are_accepted() -> None:
    with pytest.raises(TypeError, match="raw request bytes"):
        webhooks.verify(BODY.decode(), GOOD, SECRET)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="signing secret"):
        webhooks.verify(BODY, GOOD, "")
    webhooks.verify(bytes(bytearray(BODY)), GOOD, SECRET)


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    webhooks.verify(BODY, GOOD, SECRET)
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(BODY, _flip(GOOD), SECRET)
    assert len(calls) == 2


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [m.value for m in WebhookEventType])
def test_every_batch_event_parses_typed(kind: str) -> None:
    event = webhooks.parse(b'{"event_type":"%s","data":{"id":"bat-1"}}' % kind.encode())
    assert event.event_type == kind
    assert event.event_type.known
    assert event.batch_id == "bat-1"


def test_an_event_parses_with_its_fields() -> None:
    event = webhooks.parse(BODY)
    assert event.event_type is WebhookEventType.BATCH_SUCCESS
    assert event.event_id == "evt-1"
    assert event.timestamp is not None
    assert event.timestamp.year == 2026
    assert event.data == {"id": "bat-123", "status": "COMPLETED"}


def test_unknown_event_types_and_fields_are_kept() -> None:
    event = webhooks.parse(b'{"event_type":"parse.success","new_field":1,"data":{"job_id":"j"}}')
    assert event.event_type == "parse.success"
    assert not event.event_type.known
    assert event.batch_id is None
    assert webhooks.parse(UNICODE).batch_id == "bat-é"
    odd = webhooks.parse(b'{"event_type":"batch.running","data":[1,"x"]}')  # any JSON data
    assert odd.data == [1, "x"]
    assert odd.batch_id is None


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"data":{}}', b'{"event_type":3}', b'{"event_type":null}'],
)
def test_a_body_that_is_not_an_event_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError, match="not a webhook event"):
        webhooks.parse(body)


def test_event_is_a_struct() -> None:
    assert isinstance(webhooks.parse(BODY), WebhookEvent)


# --- over a real loopback server ----------------------------------------------------------


async def test_a_loopback_aiohttp_server_verifies_then_parses() -> None:
    received: list[WebhookEvent] = []

    async def on_delivery(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            webhooks.verify(body, request.headers.get(SIGNATURE_HEADER), SECRET)
            event = webhooks.parse(body)
        except WebhookVerificationError:
            raise web.HTTPUnauthorized() from None
        received.append(event)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", on_delivery)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/hook"
        async with aiohttp.ClientSession() as session:
            headers = {SIGNATURE_HEADER: GOOD, "Content-Type": "application/json"}
            async with session.post(url, data=BODY, headers=headers) as resp:
                assert resp.status == 204
            async with session.post(url, data=BODY + b"\n", headers=headers) as resp:
                assert resp.status == 401
            async with session.post(url, data=BODY) as resp:
                assert resp.status == 401
    finally:
        await runner.cleanup()
    assert [e.batch_id for e in received] == ["bat-123"]

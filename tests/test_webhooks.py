"""Webhook deliveries: signature checks over the raw bytes, typed events, and a
real loopback aiohttp.web server receiving a signed delivery."""

from __future__ import annotations

import hashlib
import hmac
import json

import aiohttp
import pytest
from aiohttp import web

from aiobatch import AiobatchError, WebhookVerificationError, webhooks
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
    assert event.event_type is not None
    assert event.event_type.known
    assert event.batch_id == "bat-1"


def test_an_event_keeps_its_raw_body_and_decoded_json() -> None:
    event = webhooks.parse(BODY)
    assert event.event_type is WebhookEventType.BATCH_SUCCESS
    assert event.event_id == "evt-1"
    assert event.body == BODY
    assert event.json == json.loads(BODY)
    assert event.json["timestamp"] == "2026-01-02T03:04:05Z"  # kept, not interpreted
    assert event.data == {"id": "bat-123", "status": "COMPLETED"}
    assert "TOP-SECRET" not in repr(event)


def test_unknown_event_types_and_fields_are_kept() -> None:
    event = webhooks.parse(b'{"event_type":"parse.success","new_field":1,"data":{"job_id":"j"}}')
    assert event.event_type == "parse.success"
    assert event.event_type is not None
    assert not event.event_type.known
    assert event.batch_id is None
    assert event.json["new_field"] == 1
    assert webhooks.parse(UNICODE).batch_id == "bat-é"
    odd = webhooks.parse(b'{"event_type":"batch.running","data":[1,"x"]}')  # any JSON data
    assert odd.data == [1, "x"]
    assert odd.batch_id is None


@pytest.mark.parametrize(
    ("body", "decoded"),
    [
        (b"", None),
        (b"not json", None),
        (b"[]", []),
        (b'{"data":{}}', {"data": {}}),
        (b'{"event_type":3}', {"event_type": 3}),
        (b'{"event_type":null}', {"event_type": None}),
        (b'"batch bat-1 finished"', "batch bat-1 finished"),  # a "string" output format?
        (b"\xff\xfe", None),
    ],
)
def test_an_envelope_nobody_expected_never_fails(body: bytes, decoded: object) -> None:
    event = webhooks.parse(body)
    assert event.body == body
    assert event.json == decoded
    assert (event.event_type, event.event_id, event.batch_id) == (None, None, None)
    assert isinstance(event.text, str)


def test_known_fields_are_read_where_they_are() -> None:
    # Other spellings of the same facts, since the payload's shape is unpublished.
    a = webhooks.parse(b'{"event":"batch.error","delivery_id":"d-1","batch_id":"bat-9"}')
    assert (a.event_type, a.event_id, a.batch_id) == ("batch.error", "d-1", "bat-9")
    b = webhooks.parse(b'{"type":"batch.running","data":{"batch_id":"bat-2","id":"x"}}')
    assert (b.event_type, b.batch_id) == ("batch.running", "bat-2")
    # The "string" format, if it is JSON inside a JSON string, is read through.
    inner = json.dumps({"event_type": "batch.success", "data": {"id": "bat-3"}})
    c = webhooks.parse(json.dumps(inner).encode())
    assert (c.event_type, c.batch_id, c.json) == ("batch.success", "bat-3", inner)


def test_event_is_a_frozen_value() -> None:
    event = webhooks.parse(BODY)
    assert isinstance(event, WebhookEvent)
    with pytest.raises(AttributeError):
        event.event_id = "x"  # type: ignore[misc]


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


# --- construct_event, secret rotation, repeats, the typed configuration ---------------------


def test_construct_event_verifies_then_reads_with_any_header_case() -> None:
    event = webhooks.construct_event(BODY, {"lc-signature": GOOD}, SECRET)
    assert event.batch_id == "bat-123"
    with pytest.raises(WebhookVerificationError, match="missing LC-Signature"):
        webhooks.construct_event(BODY, {}, SECRET)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        webhooks.construct_event(BODY + b" ", {SIGNATURE_HEADER: GOOD}, SECRET)


def test_several_secrets_while_rotating() -> None:
    new = "whsec-NEW-0000"
    headers = {SIGNATURE_HEADER: sig(BODY, new)}
    assert webhooks.construct_event(BODY, headers, [SECRET, new]).event_id == "evt-1"
    assert webhooks.construct_event(BODY, {SIGNATURE_HEADER: GOOD}, (new, SECRET)).body == BODY
    with pytest.raises(WebhookVerificationError, match="does not match") as info:
        webhooks.construct_event(BODY, headers, ["whsec-old-1", "whsec-old-2"])
    assert "whsec" not in str(info.value)
    with pytest.raises(TypeError, match="non-empty sequence"):
        webhooks.construct_event(BODY, headers, [])


def test_seen_events_drops_repeats_by_id_else_by_body() -> None:
    seen = webhooks.SeenEvents(max_size=2)
    a = webhooks.parse(BODY)
    assert seen.first_time(a)
    assert not seen.first_time(webhooks.parse(BODY))
    no_id = webhooks.parse(b'{"event_type":"batch.running"}')
    assert seen.first_time(no_id)
    assert not seen.first_time(webhooks.parse(b'{"event_type":"batch.running"}'))
    assert seen.first_time(webhooks.parse(b'{"event_type":"batch.error"}'))  # evicts BODY's key
    assert len(seen) == 2
    assert a not in seen
    restored = webhooks.SeenEvents()
    restored.remember(seen.keys())
    assert no_id in restored


def test_webhook_configuration_is_checked_and_encoded() -> None:
    hook = webhooks.WebhookConfiguration(
        webhook_url="https://hooks.example.com/llama",
        webhook_events=["batch.success", WebhookEventType.BATCH_ERROR],
        webhook_headers={"X-Team": "data"},
        webhook_signing_secret=SECRET,
        webhook_output_format="json",
    )
    assert hook.to_json() == {
        "webhook_url": "https://hooks.example.com/llama",
        "webhook_events": ["batch.success", "batch.error"],
        "webhook_headers": {"X-Team": "data"},
        "webhook_signing_secret": SECRET,
        "webhook_output_format": "json",
    }
    assert SECRET not in repr(hook)
    assert webhooks.WebhookConfiguration().to_json() == {}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"webhook_url": "ftp://x"}, "http\\(s\\) URL with a host"),
        ({"webhook_url": "https://x/\nEvil: 1"}, "without whitespace"),
        ({"webhook_events": ["batch.succes"]}, "unknown event 'batch.succes'; known: batch."),
        ({"webhook_events": "batch.success"}, "a sequence of event names"),
        ({"webhook_headers": {"X-A": "1\r\nX-B: 2"}}, "control characters"),
        ({"webhook_output_format": "xml"}, "must be one of string, json"),
        ({"webhook_signing_secret": ""}, "non-empty str"),
    ],
)
def test_webhook_configuration_refuses_bad_fields(kw: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        webhooks.WebhookConfiguration(**kw)  # type: ignore[arg-type]


def test_a_configuration_may_subscribe_to_the_jobs_events_too() -> None:
    # The API's literal (SDK 2.19) has the product jobs' events beside the batch's.
    hook = webhooks.WebhookConfiguration(
        webhook_url="https://hooks.example.com/x",
        webhook_events=["parse.success", "extract.partial_success", "batch.success"],
    )
    assert hook.to_json()["webhook_events"] == [
        "parse.success",
        "extract.partial_success",
        "batch.success",
    ]
    assert "unmapped_event" in webhooks.WEBHOOK_EVENTS
    assert len(set(webhooks.WEBHOOK_EVENTS)) == len(webhooks.WEBHOOK_EVENTS) == 38

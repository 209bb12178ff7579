"""Webhook deliveries: check the signature, then read the event.  Pure: no network.

What is known: a delivery signed with a signing secret carries
``LC-Signature: sha256=<hex>``, an HMAC-SHA256 of the **raw request body** with
the secret.  Verify the bytes exactly as received, before parsing them: JSON
that was decoded and encoded again is a different byte string and fails.

What is not: the payload's shape (no envelope is published, and what the
default ``webhook_output_format`` ``"string"`` sends is undocumented), any order
or at-most-once delivery, a signed timestamp.  So an event keeps the raw body
and its decoded JSON, reads known fields only where present, and never fails on
an envelope it did not expect; ``SeenEvents`` drops repeats.

An aiohttp.web handler::

    from aiohttp import web
    from aiobatch import webhooks

    SECRETS = ["whsec-new...", "whsec-old..."]  # while rotating: any of them
    seen = webhooks.SeenEvents()

    async def on_delivery(request: web.Request) -> web.Response:
        body = await request.read()  # the raw bytes: never request.json()
        try:
            event = webhooks.construct_event(body, request.headers, SECRETS)
        except webhooks.WebhookVerificationError:
            raise web.HTTPUnauthorized() from None
        if seen.first_time(event) and event.batch_id is not None:
            ...  # read the batch back: client.batches.get(event.batch_id)
        return web.Response(status=204)

Deliveries may repeat and may arrive out of order: key your handling on the
batch id and the status you read back from the API, not on arrival order.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ._errors import WebhookPayloadError, WebhookVerificationError
from ._webhook_setup import WEBHOOK_EVENTS, SeenEvents, WebhookConfiguration, WebhookEventType

__all__ = [
    "SIGNATURE_HEADER",
    "WEBHOOK_EVENTS",
    "SeenEvents",
    "WebhookConfiguration",
    "WebhookEvent",
    "WebhookEventType",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "construct_event",
    "parse",
    "sign",
    "verify",
]

#: The header that carries the signature.
SIGNATURE_HEADER = "LC-Signature"
_PREFIX = "sha256="
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGEST_HEX_LEN = hashlib.sha256().digest_size * 2


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One delivery, as it came: ``body`` (the raw bytes) and ``json`` (their
    decoding, ``None`` when the body is not JSON), plus the few fields read
    *only where present* (the payload's shape is not published, and
    ``webhook_output_format`` ``"string"``, the default, is not documented):

    * ``event_type``: a top-level ``event_type``, ``event`` or ``type`` string;
    * ``event_id``: a top-level ``event_id`` / ``delivery_id`` string;
    * ``data``: a top-level ``data`` value;
    * ``batch_id``: ``data.batch_id``, ``data.id`` or a top-level ``batch_id``.

    A body that is a JSON *string* holding a JSON object is read through it.
    Anything else is ``None``: an envelope aiobatch did not expect never fails.
    ``batch.success`` means every file got a job, not that every job succeeded:
    read the batch (``expand=results``) to know.
    """

    body: bytes = field(repr=False)
    json: Any = field(repr=False)
    event_type: WebhookEventType | None
    event_id: str | None
    batch_id: str | None
    data: Any = field(repr=False)

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")


def _envelope(decoded: Any) -> dict[str, Any]:
    if isinstance(decoded, str):  # perhaps the "string" output format: JSON in a string
        try:
            decoded = msgspec.json.decode(decoded.encode("utf-8", "surrogatepass"))
        except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
            return {}
    return decoded if isinstance(decoded, dict) else {}


def _first_str(where: Any, *keys: str) -> str | None:
    if not isinstance(where, dict):
        return None
    for key in keys:
        value = where.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _digest(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str) -> str:
    """The ``LC-Signature`` value for ``body`` (for tests and local senders)."""
    _check_args(body, secret)
    return _PREFIX + _digest(body, secret)


def _check_args(body: object, secret: object) -> None:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(
            f"body must be the raw request bytes, got {type(body).__name__}: "
            "verify what was received (await request.read()), not a decoded copy"
        )
    if not isinstance(secret, str) or not secret:
        raise TypeError("secret must be a non-empty str (the webhook signing secret)")


def verify(body: bytes, signature: str | None, secret: str) -> None:
    """Check that ``signature`` (the ``LC-Signature`` header value) signs ``body``.

    Raises ``WebhookVerificationError`` when the header is missing, malformed
    (no ``sha256=`` prefix, not hex, wrong length) or does not match.  The
    comparison takes the same time wherever the first differing byte is.
    Messages never contain the secret or the expected signature.
    """
    _check_args(body, secret)
    if not _matches(bytes(body), _given(signature), secret):
        raise WebhookVerificationError(_MISMATCH)


_MISMATCH = (
    f"{SIGNATURE_HEADER} does not match the body: the delivery was altered, was "
    "signed with another secret, or the body was re-encoded before verifying"
)


def _given(signature: str | None) -> str:
    """The hex digest of an ``LC-Signature`` value (lower case), or why it is malformed."""
    if signature is None or not signature.strip():
        raise WebhookVerificationError(f"missing {SIGNATURE_HEADER} header: delivery not signed")
    value = signature.strip()
    scheme, sep, given = value.partition("=")
    if not sep or scheme.strip().lower() != _PREFIX[:-1]:
        raise WebhookVerificationError(
            f"malformed {SIGNATURE_HEADER} header: expected 'sha256=<hex digest>'"
        )
    if len(given) != _DIGEST_HEX_LEN:
        raise WebhookVerificationError(
            f"malformed {SIGNATURE_HEADER} header: the digest must be {_DIGEST_HEX_LEN} "
            f"hex characters, got {len(given)}"
        )
    if not _HEX.issuperset(given):
        raise WebhookVerificationError(
            f"malformed {SIGNATURE_HEADER} header: the digest is not hexadecimal"
        )
    return given.lower()


def _matches(body: bytes, given: str, secret: str) -> bool:
    expected = _digest(body, secret)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def parse(body: bytes) -> WebhookEvent:
    """Read a **verified** body (``construct_event`` verifies and reads in one
    call).  Never fails on the payload's shape: see ``WebhookEvent``."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be the raw request bytes, got {type(body).__name__}")
    raw = bytes(body)
    try:
        decoded: Any = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        decoded = None
    env = _envelope(decoded)
    kind = _first_str(env, "event_type", "event", "type")
    data = env.get("data")
    return WebhookEvent(
        body=raw,
        json=decoded,
        event_type=WebhookEventType(kind) if kind is not None else None,
        event_id=_first_str(env, "event_id", "delivery_id"),
        batch_id=_first_str(data, "batch_id", "id") or _first_str(env, "batch_id"),
        data=data,
    )


def construct_event(
    body: bytes, headers: Mapping[str, str], secrets: str | Sequence[str]
) -> WebhookEvent:
    """Verify a delivery and read it, in one call (Stripe's ``construct_event``):
    ``headers`` as received (any case), ``secrets`` one signing secret or several
    (while rotating: the delivery passes if any of them signed it; each is
    checked, in constant time, whichever matches).  Raises
    ``WebhookVerificationError`` as ``verify`` does."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise TypeError("secrets must be a signing secret or a non-empty sequence of them")
    for key in keys:
        _check_args(body, key)
    given = _given(_header(headers, SIGNATURE_HEADER))
    matched = False
    for key in keys:  # no early exit: the time does not say which secret signed
        matched |= _matches(bytes(body), given, key)
    if not matched:
        raise WebhookVerificationError(_MISMATCH)
    return parse(body)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)

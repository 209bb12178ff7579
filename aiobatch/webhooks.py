"""Webhook deliveries: check the signature, then read the event.  Pure: no network.

A delivery signed with a signing secret carries ``LC-Signature: sha256=<hex>``,
an HMAC-SHA256 of the **raw request body** with the secret.  Verify the bytes
exactly as received, before parsing them: JSON that was decoded and encoded
again (other spacing, other escapes, other key order) is a different byte
string and fails, as it must.

An aiohttp.web handler::

    from aiohttp import web
    from aiobatch import webhooks

    SECRET = "whsec-..."  # the webhook_signing_secret given at batch creation

    async def on_delivery(request: web.Request) -> web.Response:
        body = await request.read()  # the raw bytes: never request.json()
        try:
            webhooks.verify(body, request.headers.get(webhooks.SIGNATURE_HEADER), SECRET)
            event = webhooks.parse(body)  # only bytes that passed verify()
        except webhooks.WebhookVerificationError:  # WebhookPayloadError included
            raise web.HTTPUnauthorized() from None
        if event.event_type == "batch.success":
            ...  # event.batch_id: fetch the batch with client.batches.get(...)
        return web.Response(status=204)

Deliveries may repeat and may arrive out of order: key your handling on the
batch id and the status you read back from the API, not on arrival order.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

import msgspec

from ._errors import WebhookPayloadError, WebhookVerificationError
from .models import _OpenStrEnum

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookEvent",
    "WebhookEventType",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "parse",
    "sign",
    "verify",
]

#: The header that carries the signature.
SIGNATURE_HEADER = "LC-Signature"
_PREFIX = "sha256="
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGEST_HEX_LEN = hashlib.sha256().digest_size * 2


class WebhookEventType(_OpenStrEnum):
    """Batch events.  Open: other events (``parse.success``, a future
    ``batch.*``) decode too, as pseudo-members with ``.known`` False."""

    BATCH_PENDING = "batch.pending"
    BATCH_RUNNING = "batch.running"
    BATCH_SUCCESS = "batch.success"
    BATCH_ERROR = "batch.error"
    BATCH_CANCELLED = "batch.cancelled"


class WebhookEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One delivery.  Only ``event_type`` is required; ``data`` is kept as plain
    JSON, whatever its shape (it differs per event and is not pinned by the API
    reference), and unknown top-level fields are ignored.

    ``batch.success`` means every file got a job, not that every job succeeded:
    read the batch (``expand=results``) to know.
    """

    event_type: WebhookEventType
    event_id: str | None = None
    timestamp: datetime | None = None
    data: Any = None

    @property
    def batch_id(self) -> str | None:
        """The batch the event is about, when ``data`` names one (``id`` or ``batch_id``)."""
        if not isinstance(self.data, dict):
            return None
        value = self.data.get("batch_id", self.data.get("id"))
        return value if isinstance(value, str) else None


_decoder = msgspec.json.Decoder(WebhookEvent)


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
    expected = _digest(bytes(body), secret)
    if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii")):
        raise WebhookVerificationError(
            f"{SIGNATURE_HEADER} does not match the body: the delivery was altered, was "
            "signed with another secret, or the body was re-encoded before verifying"
        )


def parse(body: bytes) -> WebhookEvent:
    """Decode a **verified** body into a ``WebhookEvent``.

    Raises ``WebhookPayloadError`` (a ``WebhookVerificationError``, so one
    ``except`` refuses both) for a body that is not a JSON event object (no
    ``event_type``, wrong types).  Unknown event types and fields are kept.
    """
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise WebhookPayloadError(f"the delivery is not a webhook event: {exc}") from None

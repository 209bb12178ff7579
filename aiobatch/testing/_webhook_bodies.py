"""The bodies of the simulator's webhook deliveries.

The real payload's shape is not published (nor what the default
``webhook_output_format`` ``"string"`` sends), so the simulator must not send
one shape the client was written against: a test would then prove only that
both sides share a guess.  Each delivery's body is one of ``ENVELOPES``,
picked by ``Faults.webhook_envelope``; ``"drawn"`` (the default) picks one per
event from the seed, among every shape for the ``"string"`` format (or none
given) and among the JSON objects for ``"json"``.  Some shapes put the batch id
and event name where ``aiobatch.webhooks`` looks; ``"text"`` and ``"opaque"``
put them nowhere it knows, so a receiver can only keep the raw body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["ENVELOPES", "JSON_ENVELOPES", "Envelope", "body_of", "pick"]

#: What an envelope maker is given: the event name, its id, when, the batch's JSON.
Envelope = Callable[[str, str, str, dict[str, Any]], tuple[bytes, str]]

_JSON = "application/json"


def _encode(value: Any) -> tuple[bytes, str]:
    return msgspec.json.encode(value), _JSON


def _event_type(kind: str, event_id: str, at: str, batch: dict[str, Any]) -> tuple[bytes, str]:
    # The envelope aiobatch's first simulator invented; one guess among others.
    data = {**batch, "batch_id": batch["id"]}
    return _encode({"event_id": event_id, "event_type": kind, "timestamp": at, "data": data})


def _event(kind: str, event_id: str, at: str, batch: dict[str, Any]) -> tuple[bytes, str]:
    return _encode({"event": kind, "delivery_id": event_id, "created_at": at, "data": batch})


def _flat(kind: str, event_id: str, at: str, batch: dict[str, Any]) -> tuple[bytes, str]:
    return _encode({"type": kind, "batch_id": batch["id"], "status": batch["status"], "at": at})


def _string(kind: str, event_id: str, at: str, batch: dict[str, Any]) -> tuple[bytes, str]:
    # One reading of the "string" format: a JSON document inside a JSON string.
    inner = msgspec.json.encode({"event_type": kind, "data": batch}).decode()
    return _encode(inner)


def _text(kind: str, event_id: str, at: str, batch: dict[str, Any]) -> tuple[bytes, str]:
    # Another reading of "string": prose, not JSON at all.
    line = f"{kind}: batch {batch['id']} is {batch['status']} ({at})"
    return line.encode(), "text/plain; charset=utf-8"


def _opaque(kind: str, event_id: str, at: str, batch: dict[str, Any]) -> tuple[bytes, str]:
    # Known facts under names nobody guessed: nothing can be read, nothing may fail.
    return _encode({"kind": kind, "uid": event_id, "payload": {"object": batch}})


ENVELOPES: dict[str, Envelope] = {
    "event_type": _event_type,
    "event": _event,
    "flat": _flat,
    "string": _string,
    "text": _text,
    "opaque": _opaque,
}
#: The shapes that are a JSON object (what ``webhook_output_format="json"`` may send).
JSON_ENVELOPES = ("event_type", "event", "flat", "opaque")


def pick(choice: str, *, seed: int, event_id: str, output_format: object) -> str:
    """The envelope of one event: ``choice`` itself, or for ``"drawn"`` a shape
    fixed by the seed and the event (a repeat of it has the same bytes)."""
    if choice != "drawn":
        return choice
    pool = JSON_ENVELOPES if output_format == "json" else tuple(ENVELOPES)
    digest = hashlib.blake2b(f"{seed}/{event_id}".encode(), digest_size=4).digest()
    return pool[int.from_bytes(digest, "big") % len(pool)]


def body_of(
    envelope: str, kind: str, event_id: str, at: str, batch: dict[str, Any]
) -> tuple[bytes, str]:
    """The body and its ``Content-Type``."""
    return ENVELOPES[envelope](kind, event_id, at, batch)

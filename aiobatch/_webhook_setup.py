"""What a webhook receiver sets up around deliveries: the ``webhook_configurations``
of a batch create (typed, checked before any request), the known events, and a
guard against repeated deliveries (nothing is signed with a timestamp, so replay
protection is the receiver's: remember what was delivered)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ._config import check_header
from .models import _OpenStrEnum

if TYPE_CHECKING:  # pragma: no cover
    from .webhooks import WebhookEvent

__all__ = [
    "OUTPUT_FORMATS",
    "WEBHOOK_EVENTS",
    "SeenEvents",
    "WebhookConfiguration",
    "WebhookEventType",
]

#: ``webhook_output_format`` values (the SDK's; what each sends is not published).
OUTPUT_FORMATS = ("string", "json")


class WebhookEventType(_OpenStrEnum):
    """Batch events.  Open: other events (``parse.success``, a future
    ``batch.*``) decode too, as pseudo-members with ``.known`` False."""

    BATCH_PENDING = "batch.pending"
    BATCH_RUNNING = "batch.running"
    BATCH_SUCCESS = "batch.success"
    BATCH_ERROR = "batch.error"
    BATCH_CANCELLED = "batch.cancelled"


#: Every event a configuration may subscribe to: the official SDK 2.19's
#: ``webhook_events`` literal (a batch's product jobs report too: ``parse.success``...).
_JOB_EVENTS = {
    "classify": "cancelled error partial_success pending running success",
    "extract": "cancelled error partial_success pending success",
    "parse": "cancelled error partial_success pending running success",
    "sheets": "cancelled error partial_success pending success",
    "split": "cancelled error pending processing success",
    "verify": "cancelled error pending running success",
}
WEBHOOK_EVENTS = (
    *(m.value for m in WebhookEventType.__members__.values()),
    *(f"{job}.{event}" for job, events in _JOB_EVENTS.items() for event in events.split()),
    "unmapped_event",
)
_KNOWN_EVENTS = frozenset(WEBHOOK_EVENTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfiguration:
    """One entry of ``batches.create(webhook_configurations=[...])``, checked
    when built: ``webhook_url`` an http(s) URL with a host, ``webhook_events``
    known events (``WEBHOOK_EVENTS``: the batch's and its jobs'),
    ``webhook_headers`` header lines that cannot smuggle another,
    ``webhook_output_format`` ``"string"`` or ``"json"``.  Every field is
    optional, as in the API's schema; unset ones are not sent.  The signing
    secret stays out of the repr."""

    webhook_url: str | None = None
    webhook_events: Sequence[WebhookEventType | str] | None = None
    webhook_headers: Mapping[str, str] | None = field(default=None, repr=False)
    webhook_signing_secret: str | None = field(default=None, repr=False)
    webhook_output_format: Literal["string", "json"] | None = None

    def __post_init__(self) -> None:
        if self.webhook_url is not None:
            _check_url(self.webhook_url)
        if self.webhook_events is not None:
            events = self.webhook_events
            if isinstance(events, str) or not all(isinstance(e, str) for e in events):
                raise TypeError("webhook_events must be a sequence of event names")
            unknown = [e for e in events if str(e) not in _KNOWN_EVENTS]
            if unknown:
                batch = ", ".join(m.value for m in WebhookEventType.__members__.values())
                raise ValueError(
                    f"webhook_events: unknown event {str(unknown[0])[:60]!r}; known: "
                    f"{batch}, and parse.*, extract.*... (aiobatch.webhooks.WEBHOOK_EVENTS)"
                )
            object.__setattr__(self, "webhook_events", tuple(str(e) for e in events))
        if self.webhook_headers is not None:
            if not isinstance(self.webhook_headers, Mapping):
                raise TypeError("webhook_headers must be a mapping of header names to values")
            for name, value in self.webhook_headers.items():
                check_header(name, value, "webhook_headers")
            object.__setattr__(self, "webhook_headers", dict(self.webhook_headers))
        secret = self.webhook_signing_secret
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise TypeError("webhook_signing_secret must be a non-empty str")
        if self.webhook_output_format not in (None, *OUTPUT_FORMATS):
            raise ValueError(
                f"webhook_output_format must be one of {', '.join(OUTPUT_FORMATS)}; "
                f"got {self.webhook_output_format!r}"
            )

    def to_json(self) -> dict[str, Any]:
        """The request's JSON object: the fields that are set."""
        out: dict[str, Any] = {}
        for name in (
            "webhook_url",
            "webhook_events",
            "webhook_headers",
            "webhook_signing_secret",
            "webhook_output_format",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


def _check_url(url: object) -> None:
    if not isinstance(url, str) or any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("webhook_url must be a URL without whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (validates the port)
    except ValueError as exc:
        raise ValueError(f"webhook_url is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook_url must be an http(s) URL with a host")


class SeenEvents:
    """The deliveries a receiver has handled lately, to drop repeats and replays::

        seen = webhooks.SeenEvents()
        event = webhooks.construct_event(body, request.headers, SECRETS)
        if not seen.first_time(event):
            return web.Response(status=200)  # a repeat: acknowledged, not redone

    An event is known by its ``event_id`` when the payload has one, else by the
    SHA-256 of its body (a resent delivery has the same bytes).  The newest
    ``max_size`` keys are kept (a bounded memory; older repeats pass again):
    persist ``keys()`` to survive a restart.
    """

    def __init__(self, max_size: int = 10_000) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"max_size must be an int >= 1, got {max_size!r}")
        self.max_size = max_size
        self._keys: OrderedDict[str, None] = OrderedDict()

    @staticmethod
    def key(event: WebhookEvent) -> str:
        if event.event_id is not None:
            return "id:" + event.event_id
        return "sha256:" + hashlib.sha256(event.body).hexdigest()

    def first_time(self, event: WebhookEvent) -> bool:
        """True the first time ``event`` is seen (and remembers it), else False."""
        key = self.key(event)
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.max_size:
            self._keys.popitem(last=False)
        return True

    def __contains__(self, event: object) -> bool:
        return hasattr(event, "body") and self.key(event) in self._keys  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[str]:
        """The remembered keys, oldest first (``remember`` them back after a restart)."""
        return list(self._keys)

    def remember(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self.max_size:
            self._keys.popitem(last=False)

"""Fault and behaviour knobs.

``Faults`` is plain, frozen configuration; ``Trigger`` says *when* a fault fires,
once, the same way for every kind of fault.  The counters behind triggers live
in ``FaultState``, created afresh whenever ``sim.faults`` is assigned, so a test
that swaps in new faults starts from request number one.

Faults are tried in a fixed order (``FAULT_ORDER``) and the first that fires
wins; a trigger only counts the requests that reach it, so "first=2" on two
faults gives two 429s and then two 503s.  The page faults (``empty_page``,
``stale_page``) come last and only ever reach valid item-list requests they
apply to (``stale_page``: ``offset >= limit``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Container, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ._webhook_bodies import ENVELOPES

__all__ = [
    "CURSOR_FAULTS",
    "EMPTY_STYLES",
    "ENDPOINTS",
    "FAULT_ORDER",
    "PAGE_FAULTS",
    "EmptyStyle",
    "FaultState",
    "Faults",
    "Trigger",
]

#: Route names a trigger can target with ``on``; "*" means every route.
ENDPOINTS = (
    "items",
    "results",
    "jobs",
    "job",
    "cancel",
    "create",
    # where items' output lives (outside /batch-processing)
    "parse_job",
    "parse_result",
    "classify_job",
    "classify_results",
    # the v2 Batches API (/api/v2/batches)
    "batches",
    "batch",
    "batch_cancel",
    "batch_create",
    # the product jobs a v2 batch hands out (/api/v2/parse, /api/v2/extract)
    "parse_v2_job",
    "extract_v2_job",
    # the source directories' file listings (/api/v1/beta/directories/{id}/files)
    "directory_files",
)

#: Page faults: a valid item-list answer, but the wrong page (items only).
PAGE_FAULTS = ("empty_page", "stale_page")

#: Cursor faults: a valid v2 batch-list answer whose token misleads (batches only).
CURSOR_FAULTS = ("repeat_token", "empty_token_page")

#: How ``empty_page`` leaves the items out of the body.
EmptyStyle = Literal["empty", "null", "missing"]
EMPTY_STYLES: tuple[EmptyStyle, ...] = ("empty", "null", "missing")

#: Faults that replace or break a response, in the order they are tried.
FAULT_ORDER = (
    "stall",
    "reset",
    "rate_limit",
    "server_error",
    "html",
    "reset_mid_body",
    "truncate",
    "chunked_cut",
    "unframed_cut",
    "trickle",
    *PAGE_FAULTS,
    *CURSOR_FAULTS,
)


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a fault fires.  Conditions are OR-ed; ``times`` caps the total.

    Requests are counted per fault, 1-based, among requests to the ``on``
    endpoint(s) that reach this fault (an earlier fault that fired hides the
    request from later ones).  ``after`` ignores that many requests first, so
    ``Trigger(after=20, first=5)`` is a burst of five failures from request 21.
    ``offsets`` maps an ``offset`` query value to how many times requests at
    that offset fail ("offset 500 fails twice, then succeeds" is
    ``offsets={500: 2}``).  ``in_flight_above`` fires while more than that many
    requests (this one included) are being served.

    Text form (CLI): ``"first=2,every=10,p=0.05,offset=500x2,offset=900,inflight>8,
    after=20,times=5,on=items"``.
    """

    probability: float = 0.0
    every: int = 0
    first: int = 0
    offsets: Mapping[int, int] = field(default_factory=dict)
    in_flight_above: int | None = None
    after: int = 0
    times: int | None = None
    on: str = "items"

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if min(self.every, self.first, self.after, self.times or 0) < 0:
            raise ValueError("every, first, after and times must be >= 0")
        if self.on != "*" and self.on not in ENDPOINTS:
            raise ValueError(f"on must be '*' or one of {ENDPOINTS}, got {self.on!r}")
        object.__setattr__(self, "offsets", dict(self.offsets))

    @classmethod
    def always(cls, on: str = "items") -> Trigger:
        return cls(every=1, on=on)

    @classmethod
    def parse(cls, text: str) -> Trigger:
        """Read the text form (see the class docstring)."""
        kw: dict[str, Any] = {}
        offsets: dict[int, int] = {}
        for raw in text.split(","):
            term = raw.strip()
            if not term:
                continue
            if term.startswith("inflight>"):
                kw["in_flight_above"] = int(term.removeprefix("inflight>"))
                continue
            name, sep, value = term.partition("=")
            if not sep:
                raise ValueError(f"bad trigger term {term!r}: expected name=value")
            if name in ("p", "probability"):
                kw["probability"] = float(value)
            elif name in ("every", "first", "after", "times"):
                kw[name] = int(value)
            elif name == "offset":
                at, _, count = value.partition("x")
                offsets[int(at)] = int(count or 1)
            elif name == "on":
                kw["on"] = value
            else:
                raise ValueError(f"unknown trigger term {name!r} in {text!r}")
        return cls(offsets=offsets, **kw)

    def matches(self, endpoint: str) -> bool:
        return self.on == "*" or self.on == endpoint


@dataclass(frozen=True, slots=True)
class Faults:
    """Everything the simulator can do wrong (or unusually).  All off by default."""

    #: Seeds the RNG of probabilistic triggers and of latency jitter.
    seed: int = 0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0

    # -- error responses --------------------------------------------------
    rate_limit: Trigger | None = None
    #: ``Retry-After`` sent with 429s ("2", an HTTP-date, "soon"...); None omits it.
    retry_after: str | None = "1"
    retry_after_ms: str | None = None
    server_error: Trigger | None = None
    #: Status of ``server_error`` (500, 502, 503, 504, or e.g. 409 / 400).
    error_status: int = 503
    #: ``Retry-After`` sent with ``server_error`` responses.
    error_retry_after: str | None = None
    #: ``x-should-retry`` value added to 429 and ``server_error`` responses.
    should_retry: str | None = None
    #: A 200 whose body is an HTML page (a proxy's maintenance page).
    html: Trigger | None = None

    # -- broken transport / framing --------------------------------------
    #: No answer at all: the request hangs until the client gives up (closes
    #: the connection, e.g. on its timeout) or the simulator stops.
    stall: Trigger | None = None
    #: Connection reset (RST) before any response byte.  aiohttp clients replay
    #: an idempotent request once after a disconnect: fire twice to surface one.
    reset: Trigger | None = None
    #: Headers and part of the body, then a reset.
    reset_mid_body: Trigger | None = None
    #: Content-Length promises more than is sent, then a clean close.
    truncate: Trigger | None = None
    #: Chunked body whose terminating chunk never comes, then a clean close.
    chunked_cut: Trigger | None = None
    #: No Content-Length, no chunking, close mid-JSON: EOF looks like the end.
    unframed_cut: Trigger | None = None
    #: Fraction of the body sent before the break, for the three faults above.
    cut_fraction: float = 0.5
    #: Body trickled at ``trickle_bytes_per_sec`` when this fires.
    trickle: Trigger | None = None
    trickle_bytes_per_sec: float = 20_000.0

    # -- item-list behaviour (GET /{job_id}/items) ------------------------
    #: Serve at most this many items whatever ``limit`` asks, silently.
    cap_limit: int | None = None
    omit_total_size: bool = False
    #: ``total_size`` reported as ``round(true * factor) + delta``.
    total_size_factor: float = 1.0
    total_size_delta: int = 0
    #: Always serve offset 0 (an API that ignores ``offset``).
    ignore_offset: bool = False
    #: Send ``next_page_token`` while more items follow.
    next_page_token: bool = False
    #: Unknown fields in items and envelopes (all JSON endpoints).
    extra_fields: bool = False
    #: Every item whose index is a multiple of this shows ``unknown_status_value``.
    unknown_status_every: int = 0
    unknown_status_value: str = "quarantined"

    # -- hostile paging (GET /{job_id}/items) -----------------------------
    #: A 200 with no items but the true ``total_size`` (subject to the
    #: total_size knobs), shaped by ``empty_style``: a transient glitch.
    empty_page: Trigger | None = None
    #: ``"empty"``: ``"items": []``; ``"null"``: ``"items": null``; ``"missing"``:
    #: no ``items`` key at all.
    empty_style: EmptyStyle = "empty"
    #: An offset at or past the end of the (status-filtered) listing serves its
    #: last ``limit`` items (offset ``max(0, n - limit)``); ``total_size`` stays true.
    clamp_offset: bool = False
    #: Serve the previous page (``offset - limit``, ``limit`` after ``cap_limit``):
    #: a stale cache.  Only requests at ``offset >= limit`` reach (and count for) it.
    stale_page: Trigger | None = None
    #: Ties in the sort key: within each aligned group of this many consecutive
    #: positions of the listing served (after status filtering), the order is a
    #: fresh shuffle per request, seeded by ``seed`` and a per-request counter
    #: (restarted when ``sim.faults`` is assigned).  Pages cutting a group see a
    #: different arrangement each time, so a scan repeats some items and misses
    #: others.  0 is off.
    unstable_ties: int = 0

    # -- hostile cursors (GET /api/v2/batches; triggers need on="batches") --
    #: The page's ``next_page_token`` is the token the request sent (on a first
    #: page: a token for the start of the listing): the pagination loops.
    repeat_token: Trigger | None = None
    #: A page with no items that still carries a (fresh) token for the same
    #: position: following it goes on where the listing was.
    empty_token_page: Trigger | None = None

    # -- behaviour the API does not publish ------------------------------
    #: Refuse (400) to cancel a v1 job or v2 batch that already finished; by
    #: default such a cancel is accepted and changes nothing.
    refuse_cancel_finished: bool = False
    #: Seconds a v2 batch's ``results`` stay null after it reached a final status
    #: ("before result mappings are available").
    results_delay: float = 0.0
    #: v2 parse contents (``markdown_full``, ``items``...) over this many bytes of
    #: JSON are not given inline: a 413 saying so (``inline_over_limit="error"``) or
    #: an empty field in a COMPLETED answer (``"empty"``).  None: no limit.
    inline_result_limit: int | None = None
    inline_over_limit: Literal["error", "empty"] = "error"

    # -- webhook deliveries (v2 batches created with webhook_configurations) --
    #: Deliver each round of events (all the status changes one clock move
    #: revealed) in a seeded random order instead of the order they happened.
    webhook_shuffle: bool = False
    #: Every N-th delivery is sent twice (the same body, event id and
    #: signature), as a server that retries a delivery would.  0 is off.
    webhook_duplicate_every: int = 0
    #: POSTs of one event at most: a non-2xx answer is redelivered until then.
    webhook_attempts: int = 3
    #: The shape of each delivery's body (the real one is not published): a key
    #: of ``aiobatch.testing.WEBHOOK_ENVELOPES``, or ``"drawn"``, one per event
    #: from the seed (JSON objects only for ``webhook_output_format="json"``).
    webhook_envelope: str = "drawn"

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")
        if not 0.0 <= self.cut_fraction < 1.0:
            raise ValueError("cut_fraction must be within [0, 1)")
        if self.cap_limit is not None and self.cap_limit < 1:
            raise ValueError("cap_limit must be >= 1")
        if not self.trickle_bytes_per_sec > 0:
            raise ValueError("trickle_bytes_per_sec must be > 0")
        if not 100 <= self.error_status <= 599:
            raise ValueError("error_status must be an HTTP status")
        if self.empty_style not in EMPTY_STYLES:
            raise ValueError(f"empty_style must be one of {EMPTY_STYLES}")
        if self.unstable_ties < 0:
            raise ValueError("unstable_ties must be >= 0")
        if self.results_delay < 0:
            raise ValueError("results_delay must be >= 0")
        if self.inline_over_limit not in ("error", "empty"):
            raise ValueError("inline_over_limit must be 'error' or 'empty'")
        if self.webhook_duplicate_every < 0:
            raise ValueError("webhook_duplicate_every must be >= 0")
        if self.webhook_attempts < 1:
            raise ValueError("webhook_attempts must be >= 1")
        if self.webhook_envelope != "drawn" and self.webhook_envelope not in ENVELOPES:
            raise ValueError(f"webhook_envelope must be 'drawn' or one of {', '.join(ENVELOPES)}")
        for name in PAGE_FAULTS:
            trig = getattr(self, name)
            if trig is not None and trig.on not in ("items", "*"):
                raise ValueError(f"{name} only applies to on='items'")
        for name in CURSOR_FAULTS:
            trig = getattr(self, name)
            if trig is not None and trig.on != "batches":
                raise ValueError(f"{name} only applies to on='batches'")

    def triggers(self) -> dict[str, Trigger]:
        return {name: t for name in FAULT_ORDER if (t := getattr(self, name)) is not None}

    def describe(self) -> str:
        """The knobs that differ from the defaults, for logs and reprs."""
        default = Faults()
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        ]
        return ", ".join(changed) or "none"


class _Counter:
    __slots__ = ("fired", "per_offset", "rng", "seen")

    def __init__(self, rng: random.Random) -> None:
        self.seen = 0
        self.fired = 0
        self.per_offset: Counter[int] = Counter()
        self.rng = rng


class FaultState:
    """The counters behind one ``Faults`` value.  Not thread-safe: one event loop."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._triggers = faults.triggers()
        self._counters = {
            name: _Counter(random.Random(f"aiobatch-sim/faults/{faults.seed}/{name}"))
            for name in self._triggers
        }
        self._latency_rng = random.Random(f"aiobatch-sim/latency/{faults.seed}")
        self._tie_requests = 0
        #: Orders shuffled webhook rounds (``webhook_shuffle``).
        self.webhook_rng = random.Random(f"aiobatch-sim/webhooks/{faults.seed}")
        #: Deliveries counted for ``webhook_duplicate_every``.
        self.webhook_count = 0

    def latency(self) -> float:
        """Seconds to wait before answering."""
        f = self.faults
        if not f.latency_ms and not f.jitter_ms:
            return 0.0
        return (f.latency_ms + f.jitter_ms * self._latency_rng.random()) / 1000.0

    def tie_salt(self) -> str:
        """A fresh seed for this request's ``unstable_ties`` shuffles."""
        self._tie_requests += 1
        return f"aiobatch-sim/ties/{self.faults.seed}/{self._tie_requests}"

    def decide(
        self, endpoint: str, offset: int | None, in_flight: int, skip: Container[str] = ()
    ) -> str | None:
        """The fault to apply to this request, if any (and count it).  Faults in
        ``skip`` do not apply to this request: it does not reach them."""
        for name, trig in self._triggers.items():
            if not trig.matches(endpoint) or name in skip:
                continue
            c = self._counters[name]
            c.seen += 1
            # Always draw, so the random sequence depends only on the request count.
            lucky = trig.probability > 0 and c.rng.random() < trig.probability
            n = c.seen - trig.after
            if n <= 0 or (trig.times is not None and c.fired >= trig.times):
                continue
            at = offset if offset is not None else 0
            hit = (
                lucky
                or n <= trig.first
                or (trig.every > 0 and n % trig.every == 0)
                or c.per_offset[at] < trig.offsets.get(at, 0)
                or (trig.in_flight_above is not None and in_flight > trig.in_flight_above)
            )
            if hit:
                c.fired += 1
                if at in trig.offsets:
                    c.per_offset[at] += 1
                return name
        return None

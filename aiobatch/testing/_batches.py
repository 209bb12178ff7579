"""The v2 Batches API (``/api/v2/batches``) in the simulator: the batches held,
their progress on the simulator's clock, and the handlers.

A batch is described (``SimBatch``) and its state derived from the clock, like
a v1 job: ``PENDING`` until it starts, ``THROTTLED`` for ``throttled_for``
seconds, ``RUNNING`` while its files are dispatched (``rate`` files per second),
then ``COMPLETED`` (or the forced ``status``, e.g. ``FAILED``).  A cancel stops
it as ``CANCELLED``.  The listing is newest first (``created_at``, then id) and
its page tokens are keyset positions: batches created while a scan runs never
shift the pages of that scan.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiDict
from yarl import URL

from ._app import ENDPOINT, FAULT, SIM, SimHost, _json, _json_body
from ._jobs import SimClock
from ._v2jobs import V2_EXTRACT, V2_PARSE, get_extract_job_v2, get_parse_job_v2
from ._validate import ApiError, Errors

__all__ = [
    "BATCHES",
    "BATCH_STATUSES",
    "V2_BATCHES",
    "BatchStore",
    "SimBatch",
    "add_batch_routes",
]

V2_BATCHES = "/api/v2/batches"
BATCH_STATUSES = ("PENDING", "THROTTLED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
BATCH_JOB_TYPES = ("parse_v2", "extract_v2")
_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
_DEFAULT_PROJECT = "5d3c1f0e-7a51-4c2b-9a8e-3f9b1c2d4e5f"


@dataclass(frozen=True, slots=True)
class SimBatch:
    """A simulated v2 batch over ``files`` source files.

    Every ``error_every``-th file (1-based; 0 never) gets no job and an
    ``error_message`` instead.  ``status`` forces a final status (``"FAILED"``:
    orchestration failed once the files were dispatched).
    """

    batch_id: str
    source_directory_id: str = "dir-7f3a9c21-sim"
    job_type: str = "parse_v2"
    configuration_id: str = "cfg-sim-0001"
    project_id: str = _DEFAULT_PROJECT
    files: int = 10
    #: Epoch seconds; None: the simulator's clock when the batch is added.
    created_at: float | None = None
    start_delay: float = 1.0
    throttled_for: float = 0.0
    rate: float = 5.0
    error_every: int = 0
    status: str | None = None
    #: The parse tier its jobs run at; ``fast`` jobs refuse markdown and items.
    tier: str = "cost_effective"
    #: One source file in three gets a hostile ``display_name`` in the
    #: directory listing (``../../etc/passwd``, control characters, duplicates).
    hostile_names: bool = False

    def __post_init__(self) -> None:
        if not self.batch_id or "/" in self.batch_id:
            raise ValueError("batch_id must be a non-empty string without '/'")
        if self.files < 0 or self.error_every < 0:
            raise ValueError("files and error_every must be >= 0")
        if not self.rate > 0 or self.start_delay < 0 or self.throttled_for < 0:
            raise ValueError("rate must be > 0; start_delay and throttled_for >= 0")
        if self.status is not None and self.status not in ("COMPLETED", "FAILED"):
            raise ValueError("status may only force 'COMPLETED' or 'FAILED'")


class _BatchState:
    __slots__ = ("batch", "cancelled_at", "created_at", "emitted", "hooks")

    def __init__(
        self, batch: SimBatch, now: float, hooks: list[dict[str, Any]] | None = None
    ) -> None:
        self.batch = batch
        self.created_at = batch.created_at if batch.created_at is not None else now
        self.cancelled_at: float | None = None
        #: The ``webhook_configurations`` given at creation.
        self.hooks: list[dict[str, Any]] = hooks or []
        #: Statuses whose webhook events were already sent.
        self.emitted: set[str] = set()

    def transitions(self) -> list[tuple[float, str]]:
        """Every status change the batch makes, ``(time, status)`` in order
        (``THROTTLED`` left out: it has no webhook event)."""
        b = self.batch
        out = [(self.created_at, "PENDING")]
        cancelled = self.cancelled_at is not None and self.cancelled_at < self.finished_at()
        if not cancelled or (self.cancelled_at is not None and self.running_at < self.cancelled_at):
            out.append((self.running_at, "RUNNING"))
        if cancelled:
            assert self.cancelled_at is not None
            out.append((self.cancelled_at, "CANCELLED"))
        else:
            out.append((self.finished_at(), b.status or "COMPLETED"))
        return out

    @property
    def running_at(self) -> float:
        b = self.batch
        return self.created_at + b.start_delay + b.throttled_for

    def dispatched(self, t: float) -> int:
        """Files that got their job by time ``t``."""
        if self.cancelled_at is not None:
            t = min(t, self.cancelled_at)
        if t < self.running_at:
            return 0
        return min(self.batch.files, math.floor((t - self.running_at) * self.batch.rate + 1e-9))

    def finished_at(self) -> float:
        return self.running_at + self.batch.files / self.batch.rate

    def status(self, t: float) -> str:
        b = self.batch
        if self.cancelled_at is not None and self.cancelled_at < self.finished_at():
            return "CANCELLED"
        if t >= self.finished_at():
            return b.status or "COMPLETED"
        if t < self.created_at + b.start_delay:
            return "PENDING"
        if t < self.running_at:
            return "THROTTLED"
        return "RUNNING"

    def updated_at(self, t: float) -> float:
        status = self.status(t)
        if status == "CANCELLED":
            assert self.cancelled_at is not None
            return self.cancelled_at
        if status in _TERMINAL:
            return self.finished_at()
        if status == "RUNNING":
            return self.running_at
        if status == "THROTTLED":
            return self.created_at + self.batch.start_delay
        return self.created_at

    def results(self, t: float) -> list[dict[str, Any]] | None:
        """Per-file results: ``None`` until the batch is over."""
        status = self.status(t)
        if status not in _TERMINAL:
            return None
        b = self.batch
        done = self.dispatched(t) if status == "CANCELLED" else b.files
        kind = b.job_type.removesuffix("_v2")
        out: list[dict[str, Any]] = []
        for i in range(b.files):
            file_id = file_id_of(b.batch_id, i)
            if i >= done:
                out.append(
                    {
                        "source_directory_file_id": file_id,
                        "job_reference": None,
                        "error_message": "batch cancelled before the file was dispatched",
                    }
                )
            elif b.error_every and (i + 1) % b.error_every == 0:
                out.append(
                    {
                        "source_directory_file_id": file_id,
                        "job_reference": None,
                        "error_message": f"unsupported file type: file {i}",
                    }
                )
            else:
                # The SDK (2.19.0) types it Literal["parse_v2", "extract_v2"].
                ref = {"type": b.job_type, "id": _digest(f"{b.batch_id}/{i}", f"{kind[:3]}-")}
                out.append(
                    {
                        "source_directory_file_id": file_id,
                        "job_reference": ref,
                        "error_message": None,
                    }
                )
        return out

    def body(self, t: float, *, expand_results: bool) -> dict[str, Any]:
        b = self.batch
        out: dict[str, Any] = {
            "id": b.batch_id,
            "config": {"job": {"type": b.job_type, "configuration_id": b.configuration_id}},
            "project_id": b.project_id,
            "source_directory_id": b.source_directory_id,
            "status": self.status(t),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at(t)),
        }
        if expand_results:
            out["results"] = self.results(t)
        return out


def file_id_of(batch_id: str, index: int) -> str:
    """The id of source file ``index`` of a batch."""
    return _digest(f"{batch_id}/file/{index}", "dfl-")


def _digest(text: str, prefix: str) -> str:
    return prefix + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BatchStore:
    """Every batch the simulator holds (``sim.batches``)."""

    def __init__(self, clock: SimClock, *, seed: int = 0) -> None:
        self.clock = clock
        self.seed = seed
        self._states: dict[str, _BatchState] = {}
        self._created = 0
        self._jobs: dict[str, tuple[_BatchState, str]] = {}
        #: Called after a create or a cancel (the simulator's webhooks use it).
        self.listeners: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for callback in list(self.listeners):
            callback()

    def add(self, batch: SimBatch) -> SimBatch:
        if batch.batch_id in self._states:
            raise ValueError(f"duplicate batch_id {batch.batch_id!r}")
        self._states[batch.batch_id] = _BatchState(batch, self.clock.now())
        return batch

    def extend(self, batches: Iterable[SimBatch]) -> None:
        for b in batches:
            self.add(b)

    def create(
        self,
        job_type: str,
        configuration_id: str,
        source_directory_id: str,
        project_id: str | None,
        hooks: list[dict[str, Any]] | None = None,
    ) -> _BatchState:
        self._created += 1
        batch = SimBatch(
            batch_id=_digest(f"{self.seed}/{self._created}", "bat-"),
            source_directory_id=source_directory_id,
            job_type=job_type,
            configuration_id=configuration_id,
            project_id=project_id or _DEFAULT_PROJECT,
        )
        self.add(batch)
        state = self._states[batch.batch_id]
        state.hooks = hooks or []
        self._changed()
        return state

    def hooked(self) -> list[_BatchState]:
        """The batches that have webhook configurations."""
        return [s for s in self._states.values() if s.hooks]

    def get(self, batch_id: str) -> _BatchState | None:
        return self._states.get(batch_id)

    def job(self, job_id: str) -> tuple[_BatchState, str] | None:
        """The batch and source file a product job was made for (``None``: no
        batch dispatched a file with that job yet)."""
        found = self._jobs.get(job_id)
        if found is None:
            now = self.clock.now()
            for state in self._states.values():
                for result in state.results(now) or ():
                    ref = result["job_reference"]
                    if ref is not None:
                        self._jobs[ref["id"]] = (state, result["source_directory_file_id"])
            found = self._jobs.get(job_id)
        return found

    def __len__(self) -> int:
        return len(self._states)

    def ordered(self) -> list[_BatchState]:
        """Newest first; ties by id."""
        return sorted(self._states.values(), key=_sort_key)

    def ids(
        self,
        *,
        status: str | None = None,
        source_directory_id: str | None = None,
        created_on_or_after: float | None = None,
        created_on_or_before: float | None = None,
    ) -> list[str]:
        """Ground truth: the ids the listing holds now, in listing order."""
        now = self.clock.now()
        return [
            s.batch.batch_id
            for s in self.ordered()
            if _matches(
                s, now, status, source_directory_id, created_on_or_after, created_on_or_before
            )
        ]

    def status(self, batch_id: str) -> str:
        state = self._states[batch_id]
        return state.status(self.clock.now())

    def cancel(self, state: _BatchState) -> None:
        if state.cancelled_at is None:
            state.cancelled_at = self.clock.now()
            self._changed()


def _sort_key(s: _BatchState) -> tuple[float, str]:
    return (-s.created_at, s.batch.batch_id)


def _matches(
    s: _BatchState,
    now: float,
    status: str | None,
    directory: str | None,
    after: float | None,
    before: float | None,
) -> bool:
    return (
        (status is None or s.status(now) == status)
        and (directory is None or s.batch.source_directory_id == directory)
        and (after is None or s.created_at >= after)
        and (before is None or s.created_at <= before)
    )


# --- page tokens: keyset positions -----------------------------------------------------------


def _token(key: tuple[float, str] | None, nonce: int = 0) -> str:
    text = "start" if key is None else f"after:{key[0]!r}:{key[1]}"
    if nonce:
        text += f"#{nonce}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_token(errors: Errors) -> tuple[float, str] | None:
    raw = errors.query.get("page_token")
    if not raw:  # absent or empty: the first page
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        text = text.partition("#")[0]
        if text == "start":
            return None
        kind, _, rest = text.partition(":")
        created, _, batch_id = rest.partition(":")
        if kind == "after" and batch_id:
            return (float(created), batch_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    errors.add("value_error", ["query", "page_token"], "Value error, invalid page token", raw)
    return None


def _timestamp(errors: Errors, name: str) -> float | None:
    raw = errors.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        msg = "Input should be a valid datetime or date, invalid character in year"
        errors.add("datetime_from_date_parsing", ["query", name], msg, raw)
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# --- handlers --------------------------------------------------------------------------------

BATCHES = web.AppKey("aiobatch_simulator_batches", BatchStore)


def _store(request: web.Request) -> BatchStore:
    return request.app[BATCHES]


async def list_batches(request: web.Request) -> web.StreamResponse:
    host: SimHost = request.app[SIM]
    store = _store(request)
    errors = Errors(request.query)
    page_size = errors.integer("page_size", host.default_limit, ge=1, le=host.max_limit)
    status = errors.choice("status", BATCH_STATUSES)
    after = _timestamp(errors, "created_at_on_or_after")
    before = _timestamp(errors, "created_at_on_or_before")
    position = _read_token(errors)
    errors.raise_if_any()
    assert page_size is not None
    directory = request.query.get("source_directory_id")
    now = store.clock.now()
    fault = request.get(FAULT)
    listing = [s for s in store.ordered() if _matches(s, now, status, directory, after, before)]
    if position is not None:
        listing = [s for s in listing if _sort_key(s) > position]
    page = listing[:page_size]
    more = len(listing) > len(page)
    token: str | None = _token(_sort_key(page[-1])) if more and page else None
    if fault == "empty_token_page":
        page, token = [], _token(position, nonce=host.stats.requests)
    elif fault == "repeat_token":
        token = request.query.get("page_token") or _token(None)
    items = [s.body(now, expand_results=False) for s in page]
    return _json(200, {"items": items, "next_page_token": token})


def _state(request: web.Request) -> _BatchState:
    batch_id = request.match_info["batch_id"]
    state = _store(request).get(batch_id)
    if state is None:
        raise ApiError(404, f"Batch {batch_id} not found")
    return state


async def get_batch(request: web.Request) -> web.StreamResponse:
    errors = Errors(request.query)
    expand = request.query.getall("expand", [])
    for value in expand:
        if value not in ("results",):
            errors.add("enum", ["query", "expand"], "Input should be 'results'", value)
    errors.raise_if_any()
    state = _state(request)
    now = _store(request).clock.now()
    body = state.body(now, expand_results="results" in expand)
    delay = request.app[SIM].fault_state.faults.results_delay
    if body.get("results") is not None and now < state.updated_at(now) + delay:
        body["results"] = None  # the result mappings are not there yet
    return _json(200, body)


async def cancel_batch(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    state = _state(request)
    now = store.clock.now()
    status = state.status(now)
    if status in ("COMPLETED", "FAILED"):
        host: SimHost = request.app[SIM]
        if host.fault_state.faults.refuse_cancel_finished:
            raise ApiError(400, f"Cannot cancel batch in status {status}")
        # What the API answers here is not published: accept, change nothing.
        return _json(200, state.body(now, expand_results=False))
    store.cancel(state)
    return _json(200, state.body(store.clock.now(), expand_results=False))


def _missing(errors: Errors, loc: list[str | int]) -> None:
    errors.add("missing", loc, "Field required", None)


def is_loopback_url(url: str) -> bool:
    """True for an ``http(s)`` URL on 127.0.0.0/8, ``::1`` or ``localhost``: the
    only places the simulator sends webhooks to."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    host = parsed.host
    if parsed.scheme not in ("http", "https") or not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: The event names a webhook configuration may ask for (the official SDK 2.19's
#: ``webhook_events`` literal); any other is refused with a 422.
WEBHOOK_EVENTS = frozenset(
    f"{product}.{event}"
    for product, events in {
        "batch": ("cancelled", "error", "pending", "running", "success"),
        "classify": ("cancelled", "error", "partial_success", "pending", "running", "success"),
        "extract": ("cancelled", "error", "partial_success", "pending", "success"),
        "parse": ("cancelled", "error", "partial_success", "pending", "running", "success"),
        "sheets": ("cancelled", "error", "partial_success", "pending", "success"),
        "split": ("cancelled", "error", "pending", "processing", "success"),
        "verify": ("cancelled", "error", "pending", "running", "success"),
    }.items()
    for event in events
) | {"unmapped_event"}


def _check_hook(errors: Errors, loc: list[str | int], hook: dict[str, Any]) -> None:
    # Any URL is accepted, as the API would; the simulator only ever *sends* to
    # loopback ones (others are recorded as refused deliveries).
    events = hook.get("webhook_events")
    if events is not None and (
        not isinstance(events, list) or not all(isinstance(e, str) for e in events)
    ):
        msg = "Input should be a valid list of strings"
        errors.add("list_type", [*loc, "webhook_events"], msg, events)
    elif events is not None:
        for k, name in enumerate(events):
            if name not in WEBHOOK_EVENTS:
                msg = "Input should be one of " + ", ".join(map(repr, sorted(WEBHOOK_EVENTS)))
                errors.add("literal_error", [*loc, "webhook_events", k], msg, name)
    headers = hook.get("webhook_headers")
    if headers is not None and (
        not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
    ):
        msg = "Input should be a valid dictionary of strings"
        errors.add("dict_type", [*loc, "webhook_headers"], msg, headers)
    secret = hook.get("webhook_signing_secret")
    if secret is not None and not isinstance(secret, str):
        msg = "Input should be a valid string"
        errors.add("string_type", [*loc, "webhook_signing_secret"], msg, secret)


def create_body(body: Any) -> tuple[str, str, str]:
    """``(job type, configuration_id, source_directory_id)`` of a create request;
    422 the way FastAPI would, every error at once."""
    errors = Errors(MultiDict())
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        errors.add("model_attributes_type", ["body"], msg, body)
        errors.raise_if_any()
    assert isinstance(body, dict)
    job_type = configuration_id = directory = ""
    config = body.get("config")
    if "config" not in body:
        _missing(errors, ["body", "config"])
    elif not isinstance(config, dict):
        errors.add("dict_type", ["body", "config"], "Input should be a valid dictionary", config)
    elif not isinstance(job := config.get("job"), dict):
        if "job" not in config:
            _missing(errors, ["body", "config", "job"])
        else:
            msg = "Input should be a valid dictionary"
            errors.add("dict_type", ["body", "config", "job"], msg, job)
    else:
        kind = job.get("type")
        if "type" not in job:
            _missing(errors, ["body", "config", "job", "type"])
        elif kind not in BATCH_JOB_TYPES:
            expected = "'parse_v2' or 'extract_v2'"
            loc: list[str | int] = ["body", "config", "job", "type"]
            errors.add("enum", loc, f"Input should be {expected}", kind, expected=expected)
        else:
            job_type = kind
        cid = job.get("configuration_id")
        if "configuration_id" not in job:
            _missing(errors, ["body", "config", "job", "configuration_id"])
        elif not isinstance(cid, str):
            loc = ["body", "config", "job", "configuration_id"]
            errors.add("string_type", loc, "Input should be a valid string", cid)
        else:
            configuration_id = cid
    sdi = body.get("source_directory_id")
    if "source_directory_id" not in body:
        _missing(errors, ["body", "source_directory_id"])
    elif not isinstance(sdi, str):
        loc = ["body", "source_directory_id"]
        errors.add("string_type", loc, "Input should be a valid string", sdi)
    else:
        directory = sdi
    hooks = body.get("webhook_configurations")
    if hooks is not None and not isinstance(hooks, list):
        loc = ["body", "webhook_configurations"]
        errors.add("list_type", loc, "Input should be a valid list", hooks)
    elif hooks is not None:
        for k, hook in enumerate(hooks):
            loc = ["body", "webhook_configurations", k]
            if not isinstance(hook, dict):
                errors.add("dict_type", loc, "Input should be a valid dictionary", hook)
                continue
            url = hook.get("webhook_url")  # optional in the schema
            if url is not None and not isinstance(url, str):
                msg = "Input should be a valid string"
                errors.add("string_type", [*loc, "webhook_url"], msg, url)
            _check_hook(errors, loc, hook)
    errors.raise_if_any()
    return job_type, configuration_id, directory


async def create_batch(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    body = await _json_body(request)
    job_type, configuration_id, directory = create_body(body)
    hooks = [dict(h) for h in body.get("webhook_configurations") or []]
    project = request.query.get("project_id")
    state = store.create(job_type, configuration_id, directory, project, hooks)
    return _json(200, state.body(store.clock.now(), expand_results=False))


BATCH_ENDPOINTS: Mapping[Any, str] = {
    list_batches: "batches",
    get_batch: "batch",
    cancel_batch: "batch_cancel",
    create_batch: "batch_create",
    get_parse_job_v2: "parse_v2_job",
    get_extract_job_v2: "extract_v2_job",
}


def add_batch_routes(app: web.Application, host: SimHost) -> BatchStore:
    """Serve ``/api/v2/batches`` from ``app``; the store holds the batches."""
    store = BatchStore(host.registry.clock, seed=host.registry.seed)
    app[BATCHES] = store
    ENDPOINT.update(BATCH_ENDPOINTS)
    r = app.router
    r.add_get(V2_BATCHES, list_batches)
    r.add_post(V2_BATCHES, create_batch)
    r.add_get(V2_BATCHES + "/{batch_id}", get_batch)
    r.add_post(V2_BATCHES + "/{batch_id}/cancel", cancel_batch)
    r.add_get(V2_PARSE + "/{job_id}", get_parse_job_v2)
    r.add_get(V2_EXTRACT + "/{job_id}", get_extract_job_v2)
    return store

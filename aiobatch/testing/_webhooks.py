"""Webhook deliveries of the simulator's v2 batches.

A batch created with ``webhook_configurations`` gets one event per status
change (``PENDING`` → ``batch.pending``, ``RUNNING`` → ``batch.running``,
``COMPLETED`` → ``batch.success``, ``FAILED`` → ``batch.error``, ``CANCELLED`` →
``batch.cancelled``), POSTed to each configuration's ``webhook_url`` (loopback
only: a batch may name any URL, but a delivery to another host is recorded as
refused and never sent) with its ``webhook_headers`` and, with a ``webhook_signing_secret``, an
``LC-Signature`` made by ``aiobatch.webhooks.sign``.

Status changes happen on the simulator's clock, so a background task of the
running simulator wakes whenever the clock is advanced (or a batch created or
cancelled, or, on a real-time clock, when the next change is due) and sends
what became due, one round at a time.  ``Faults.webhook_shuffle`` and
``Faults.webhook_duplicate_every`` make the order and the count hostile.  A
receiver that answers anything but 2xx, or cannot be reached (a refused or
dropped connection, a timeout), gets the event again at once
(``WebhookDelivery.attempt`` counts), up to ``Faults.webhook_attempts`` POSTs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from .. import webhooks
from ._batches import BatchStore, _BatchState, is_loopback_url
from ._webhook_bodies import body_of, pick

if TYPE_CHECKING:
    from ._faults import Faults, FaultState

__all__ = ["EVENT_OF_STATUS", "WebhookDelivery", "WebhookDispatcher"]

EVENT_OF_STATUS = {
    "PENDING": "batch.pending",
    "RUNNING": "batch.running",
    "COMPLETED": "batch.success",
    "FAILED": "batch.error",
    "CANCELLED": "batch.cancelled",
}


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One POST the simulator made (``sim.webhook_deliveries``)."""

    batch_id: str
    event_type: str
    event_id: str
    url: str
    #: Every header sent, the signature included.
    headers: dict[str, str]
    #: The exact bytes sent (what was signed).
    body: bytes
    #: The receiver's status; None when the request failed (``error`` says why).
    status: int | None
    error: str | None = None
    #: True for a repeat sent by ``webhook_duplicate_every``.
    duplicate: bool = False
    #: 1 for the first POST of an event; 2, 3... for redeliveries after a non-2xx answer.
    attempt: int = 1
    #: The body's shape (a key of ``ENVELOPES``): the real one is not published.
    envelope: str = "event_type"


@dataclass(frozen=True, slots=True)
class _Outgoing:
    batch_id: str
    event_type: str
    event_id: str
    envelope: str
    url: str
    headers: dict[str, str]
    body: bytes


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WebhookDispatcher:
    """The background sender of one simulator.  ``start()`` / ``stop()`` go with
    the simulator's; nothing runs (and no session exists) outside them."""

    def __init__(
        self,
        store: BatchStore,
        fault_state: Callable[[], FaultState],
        *,
        timeout: float = 5.0,
    ) -> None:
        self.store = store
        self._fault_state = fault_state
        self._timeout = timeout
        self.deliveries: list[WebhookDelivery] = []
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("webhook dispatcher already started")
        self._started = True
        # Fresh primitives: a simulator stopped and started again may be on another loop.
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self.store.listeners.append(self.poke)
        self.store.clock.add_listener(self.poke)
        self.poke()

    async def stop(self) -> None:
        """Cancel the task (deliveries not yet sent are dropped), close the session."""
        self._started = False
        task, self._task = self._task, None
        if self.poke in self.store.listeners:
            self.store.listeners.remove(self.poke)
        self.store.clock.remove_listener(self.poke)
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def poke(self) -> None:
        """Something may have become due: look again.  The sending task starts
        with the first batch that has webhooks: a simulator without any runs no
        task of its own."""
        if self._started and self._task is None and self.store.hooked():
            self._task = asyncio.create_task(self._run(), name="aiobatch-sim-webhooks")
        self._wake.set()

    async def wait_for(
        self,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 (a guard against waiting for too many)
    ) -> list[WebhookDelivery]:
        """Wait until at least ``count`` deliveries were made (no real sleep: it
        returns as soon as the sender reports them); ``TimeoutError`` after
        ``timeout`` seconds, a guard against a test that waits for too many."""
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: len(self.deliveries) >= count)
        return list(self.deliveries)

    # --- the task ----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await self._send_round(self._due())
            if self._wake.is_set():
                continue
            delay = self._next_due_in()
            if delay is None:
                await self._wake.wait()
            else:
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    def _next_due_in(self) -> float | None:
        """Seconds until the next status change on a real-time clock; None on a
        frozen one (it only moves on ``advance``, which wakes the task)."""
        clock = self.store.clock
        if clock.frozen:
            return None
        now = clock.now()
        upcoming = [
            t
            for s in self.store.hooked()
            for t, status in s.transitions()
            if status not in s.emitted and t > now
        ]
        return max(0.0, min(upcoming) - now) + 0.001 if upcoming else None

    def _due(self) -> list[_Outgoing]:
        now = self.store.clock.now()
        faults = self._fault_state().faults
        out: list[_Outgoing] = []
        for state in self.store.hooked():
            for t, status in state.transitions():
                if t > now + 1e-9 or status in state.emitted:
                    continue
                state.emitted.add(status)
                out.extend(_outgoing(state, status, t, faults))
        return out

    async def _send_round(self, round_: list[_Outgoing]) -> None:
        if not round_:
            return
        faults = self._fault_state()
        if faults.faults.webhook_shuffle:
            faults.webhook_rng.shuffle(round_)
        every = faults.faults.webhook_duplicate_every
        for out in round_:
            await self._send(out, duplicate=False)
            faults.webhook_count += 1
            if every and faults.webhook_count % every == 0:
                await self._send(out, duplicate=True)

    async def _send(self, out: _Outgoing, *, duplicate: bool) -> None:
        """POST one event; a non-2xx answer or a failed request (as a real
        sender would, since a receiver restarting drops connections) is
        redelivered at once, up to ``Faults.webhook_attempts`` POSTs in all.  A
        URL the simulator refuses to send to is not: it was never tried."""
        attempts = self._fault_state().faults.webhook_attempts
        for attempt in range(1, attempts + 1):
            if await self._post(out, duplicate=duplicate, attempt=attempt):
                return

    async def _post(self, out: _Outgoing, *, duplicate: bool, attempt: int) -> bool:
        """One POST, recorded; True when it settles the event (2xx, or refused)."""
        status: int | None = None
        error: str | None = None
        settled = False
        if not is_loopback_url(out.url):
            error = "refused: the simulator only sends webhooks to loopback URLs"
            settled = True
        else:
            if self._session is None:
                timeout = aiohttp.ClientTimeout(total=self._timeout)
                self._session = aiohttp.ClientSession(timeout=timeout)
            try:
                async with self._session.post(out.url, data=out.body, headers=out.headers) as r:
                    await r.read()
                    status = r.status
                settled = 200 <= status < 300
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        record = WebhookDelivery(
            batch_id=out.batch_id,
            event_type=out.event_type,
            event_id=out.event_id,
            url=out.url,
            headers=out.headers,
            body=out.body,
            status=status,
            error=error,
            duplicate=duplicate,
            attempt=attempt,
            envelope=out.envelope,
        )
        async with self._progress:
            self.deliveries.append(record)
            self._progress.notify_all()
        return settled


def _outgoing(state: _BatchState, status: str, at: float, faults: Faults) -> list[_Outgoing]:
    event_type = EVENT_OF_STATUS[status]
    batch_id = state.batch.batch_id
    out: list[_Outgoing] = []
    for k, hook in enumerate(state.hooks):
        wanted = hook.get("webhook_events") or []
        if not hook.get("webhook_url") or (wanted and event_type not in wanted):
            continue
        key = f"{batch_id}/{k}/{event_type}".encode()
        event_id = "evt-" + hashlib.blake2b(key, digest_size=8).hexdigest()
        batch: dict[str, Any] = state.body(at, expand_results=False)
        batch["status"] = status
        envelope = pick(
            faults.webhook_envelope,
            seed=faults.seed,
            event_id=event_id,
            output_format=hook.get("webhook_output_format"),
        )
        body, content_type = body_of(envelope, event_type, event_id, _iso(at), batch)
        headers = {"Content-Type": content_type}
        headers.update(hook.get("webhook_headers") or {})
        secret = hook.get("webhook_signing_secret")
        if secret:
            headers[webhooks.SIGNATURE_HEADER] = webhooks.sign(body, secret)
        out.append(
            _Outgoing(batch_id, event_type, event_id, envelope, hook["webhook_url"], headers, body)
        )
    return out

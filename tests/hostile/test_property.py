"""Property test: server behaviours drawn by Hypothesis and combined, against the
model server of ``model.py``; the oracle is the consumer's view.

Each example runs scan rounds until one ends: a consumer (slow or not) takes
items, may be cancelled at a drawn point, and resumes from the scan's progress,
the error's resume point or a ``Checkpoint``.  The promise checked:

* a round that ends hands out exactly the listing (with a checkpoint: every
  item acknowledged exactly once over all rounds, never one handed out again
  after its ack);
* a round that fails raises a typed ``AiobatchError`` whose resume point is
  exactly what the consumer received;
* nothing ends short in silence.

``make test`` runs a bounded number of examples (profile ``ci``); ``make fuzz``
runs thousands (``HYPOTHESIS_PROFILE=fuzz``) and prints each failure's example
and its ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from _servers import serve
from hypothesis import HealthCheck, example, given, note, settings

from aiobatch import (
    AiobatchError,
    BatchClient,
    Checkpoint,
    DriftError,
    PaginationError,
    RetryPolicy,
)
from aiobatch._paging import ItemIterator

from .draws import Consumer, Scenario, allowed, scenarios
from .model import JOB, Behaviour, Clock, Fault, Model, app

#: A scan resumed from an offset alone has no memory of what came before it: a
#: stale page exactly at the resume point, or a clamped one at the end, cannot be
#: told from data.  So the model answers a plain resume point honestly (a stale
#: fault there is skipped) and a clamping server's plain rounds are not resumed;
#: a checkpoint remembers the last keys behind its watermark and must cope.

settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,  # make test is repeatable; make fuzz draws anew
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=3_000,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

KEY = "llx-model-SECRET-0000"
MAX_ROUNDS = 10


@dataclass
class Round:
    got: list[str]
    error: AiobatchError | None
    stopped: bool
    next_offset: int
    next_token: str | None
    next_skip: int
    items: int


class Run:
    def __init__(self, sc: Scenario, model: Model, client: BatchClient) -> None:
        self.sc, self.model, self.client = sc, model, client
        self.c = sc.consumer
        self.rng = random.Random(self.c.seed)
        self.checkpoint = Checkpoint() if self.c.resume == "checkpoint" else None
        self.acked: list[str] = []
        self.held: list[Any] = []

    def scan(self, offset: int, token: str | None, skip: int) -> ItemIterator[Any]:
        c, cp = self.c, self.checkpoint
        opts: dict[str, Any] = {"page_size": c.page_size, "concurrency": c.concurrency}
        if cp is not None:
            opts["checkpoint"] = cp
        elif self.sc.behaviour.cursor:
            opts["start_token"], opts["start_skip"] = token, skip
        else:
            opts["start_offset"] = offset
        if self.sc.behaviour.cursor:
            return self.client.batches.iter(**opts)
        return self.client.job_items.iter(JOB, **opts)

    def take(self, x: Any) -> None:
        """A worker pool: hold ``window`` items, finish a random one of them."""
        if self.checkpoint is None:
            return
        self.held.append(x)
        if len(self.held) >= self.c.window:
            done = self.held.pop(self.rng.randrange(len(self.held)))
            self.ack(done)

    def kill(self) -> None:
        """The pool dies: held work is lost; a new process loads the saved state."""
        assert self.checkpoint is not None
        self.held.clear()
        self.checkpoint = Checkpoint.from_json(self.checkpoint.to_json())

    def ack(self, x: Any) -> None:
        assert self.checkpoint is not None
        self.checkpoint.ack(x)
        self.acked.append(x.id if self.sc.behaviour.cursor else x.item_id)

    async def round(self, offset: int, token: str | None, skip: int, stop: int | None) -> Round:
        it = self.scan(offset, token, skip)
        got: list[str] = []
        error: AiobatchError | None = None
        stopped = False
        cursor = self.sc.behaviour.cursor
        with anyio.CancelScope() as scope:
            try:
                async for x in it:
                    got.append(x.id if cursor else x.item_id)
                    self.take(x)
                    for _ in range(self.c.slow):
                        await asyncio.sleep(0)
                    if stop is not None and len(got) >= stop:
                        stopped = True
                        scope.cancel()  # cancelled at the next await, as by a caller
                        await anyio.lowlevel.checkpoint()
            except AiobatchError as exc:
                error = exc
        await it.aclose()
        p = it.progress
        return Round(got, error, stopped, p.next_offset, p.next_token, p.next_skip, p.items)


async def run(sc: Scenario) -> None:
    clock = Clock()
    model = Model(sc.behaviour, clock)
    policy = RetryPolicy(
        sleep=clock.sleep, monotonic=clock.monotonic, wall_clock=clock.monotonic, random=lambda: 0.0
    )
    async with (
        serve(app(model)) as url,
        BatchClient(api_key=KEY, base_url=url, retry=policy) as client,
    ):
        await check(sc, Run(sc, model, client))


async def check(sc: Scenario, r: Run) -> None:
    b, c = sc.behaviour, sc.consumer
    received: list[str] = []
    offset, token, skip = 0, None, 0
    stops = list(c.stops)
    last: Round | None = None
    acked_before: set[str] = set()
    resumable = r.checkpoint is not None or not b.clamp
    for _ in range(MAX_ROUNDS):
        before = offset if r.checkpoint is None else None
        if before:
            r.model.honest.add(before)
        last = await r.round(offset, token, skip, stops.pop(0) if stops else None)
        sc.log.append(f"round: {len(last.got)} items, error={last.error!r:.300}")
        assert_position(sc, last, before)
        if r.checkpoint is not None:
            again = set(last.got) & acked_before
            assert not again, f"handed out again after its ack: {sorted(again)[:3]}"
            if last.error is not None or last.stopped:
                r.kill()
            acked_before = set(r.acked)
        received += last.got
        offset, token, skip = last.next_offset, last.next_token, last.next_skip
        if last.error is not None:
            err = last.error
            if c.resume == "error" and isinstance(err, PaginationError):
                offset, token, skip = err.offset, err.next_token, err.next_skip
            if b.loop_at is not None or not resumable:
                break  # a looping server has no rest: one typed error is the answer
            if b.shrink and isinstance(err, DriftError):
                # Offsets shifted under the scan (issue 20 case 5): the typed
                # error is the answer; no resume point can say where an item
                # that moved back now is.
                break
            continue
        if not last.stopped or not resumable:
            break
    assert last is not None
    truth = model_truth(r.model)
    if last.error is not None or last.stopped:
        # Never finished within the rounds: every round said why (typed errors).
        assert_prefix(received, truth, r)
        return
    if r.checkpoint is not None:
        for x in list(r.held):
            r.ack(x)
        r.held.clear()
        assert sorted(r.acked) == sorted(set(r.acked)), "an item was acknowledged twice"
        assert_complete(sorted(r.acked), sorted(truth), r, exact=b.grow is None)
        return
    assert_complete(received, truth, r, exact=b.grow is None)


def assert_position(sc: Scenario, last: Round, before: int | None) -> None:
    """The round's resume point (progress, and the error's) is what it received."""
    b, err = sc.behaviour, last.error
    if not b.cursor and before is not None:
        assert last.next_offset == before + len(last.got), (last.next_offset, before)
    if b.cursor:
        assert last.items == len(last.got)
    if err is None:
        return
    assert isinstance(err, AiobatchError)
    if allowed(6):
        assert len(str(err)) < 4_000, "server text in messages is cut"
    if isinstance(err, PaginationError) and allowed(2):
        assert err.offset == (last.items if b.cursor else last.next_offset), err.offset
        assert (err.next_token, err.next_skip) == (last.next_token, last.next_skip)


def model_truth(model: Model) -> list[str]:
    return list(model.created if model.b.grow else model.ids)


def assert_prefix(received: list[str], truth: list[str], r: Run) -> None:
    if r.checkpoint is not None or r.sc.behaviour.shrink:
        assert len(received) == len(set(received)) or r.checkpoint is not None
        assert set(received) <= set(r.model.created)
        return
    assert received == truth[: len(received)], "items skipped or repeated before the error"


def assert_complete(got: list[str], truth: list[str], r: Run, *, exact: bool) -> None:
    if r.sc.behaviour.shrink:
        assert len(got) == len(set(got)), "an item was delivered twice"
        assert set(truth) <= set(got), f"lost {sorted(set(truth) - set(got))[:5]}"
        return
    if exact:
        assert got == truth, f"{len(got)} of {len(truth)} items, in a run that ended normally"
        return
    # A list that grew while it was read: a prefix of what it grew to, at least
    # every item there was at the start.
    assert got == truth[: len(got)] or r.checkpoint is not None
    assert len(got) >= r.sc.behaviour.n


#: Examples the fuzz found, replayed on every run.
FOUND = [
    # Issue 20 case 1: a cursor page carrying one more item than asked for.
    Scenario(Behaviour(n=6, cursor=True, over=1), Consumer(5, 1, 0, (), "progress")),
    # Case 2: a slow consumer, a page failing for good behind the pages it waits for.
    Scenario(
        Behaviour(n=16, total="absent", faults={20: Fault("429", 6)}),
        Consumer(5, 2, 40, (), "error"),
    ),
    # A checkpoint resumed where the server answers with a stale page: the items
    # acknowledged before its position are seen again (a typed error, then all).
    Scenario(
        Behaviour(n=46, total="absent", faults={45: Fault("stale", 2), 50: Fault("429", 6)}),
        Consumer(5, 1, 0, (), "checkpoint"),
    ),
    # The front of the listing shrinks once the probe at the total is asked, after
    # the consumer's last page: the checkpoint resumed from holds the total it saw,
    # and the resumed scan's lower one is drift (not a silent skip of item 81).
    Scenario(Behaviour(n=100, shrink=(100, 1)), Consumer(20, 1, 0, (81,), "checkpoint")),
]


@settings(settings.get_profile(PROFILE))
@given(sc=scenarios())
@example(sc=FOUND[0])
@example(sc=FOUND[1])
@example(sc=FOUND[2])
@example(sc=FOUND[3])
def test_the_consumer_gets_the_listing_or_a_typed_error_at_its_position(sc: Scenario) -> None:
    try:
        asyncio.run(run(sc))
    finally:
        note("\n".join(sc.log))


def test_the_fuzz_profile_is_wired() -> None:
    assert settings.get_profile("fuzz").max_examples >= 1_000
    assert PROFILE in ("ci", "fuzz")


@pytest.mark.parametrize("cursor", [False, True])
def test_a_plain_listing_comes_out_whole(cursor: bool) -> None:
    """The model server itself: well-behaved, every item once (the oracle's baseline)."""
    sc = Scenario(Behaviour(n=123, cursor=cursor), Consumer(10, 4, 0, (), "progress"))
    asyncio.run(run(sc))

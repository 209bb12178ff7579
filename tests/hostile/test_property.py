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
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from _servers import serve
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from aiobatch import AiobatchError, BatchClient, Checkpoint, RetryPolicy
from aiobatch._paging import ItemIterator

from .model import JOB, Behaviour, Clock, Fault, Model, app

#: Issue 20's cases another lane (e20a) is fixing in the paging engine: a drawn
#: behaviour that reproduces one of them is left out while its number is here.
#: Remove a number once its fix is merged, and the behaviour is drawn again.
#: 1: cursor over-delivery; 2: an error's resume point past what was received;
#: 3: 200 error bodies / blips believed as the end; 4: a low total plus an empty
#: answer at it; 5: a listing shrinking at the front; 6: unbounded tokens.
KNOWN_OPEN: frozenset[int] = frozenset({1, 2, 3, 4, 5, 6})
if "KNOWN_OPEN" in os.environ:  # e.g. KNOWN_OPEN= make fuzz: draw every behaviour
    KNOWN_OPEN = frozenset(int(c) for c in os.environ["KNOWN_OPEN"].split(",") if c.strip())

#: A scan resumed from an offset alone has no memory of what came before it: a
#: stale page exactly at the resume point, or a clamped one at the end, cannot be
#: told from data.  So the model answers a plain resume point honestly (a stale
#: fault there is skipped) and a clamping server's plain rounds are not resumed;
#: a checkpoint remembers the last keys behind its watermark and must cope.

settings.register_profile(
    "ci",
    max_examples=150,
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
RETRY_FORMS = ("none", "zero", "seconds", "decimal", "date", "ms", "garbage", "negative")


@dataclass(frozen=True)
class Consumer:
    page_size: int
    concurrency: int
    #: Event-loop turns spent on each item (a slow consumer lets pages pile up).
    slow: int
    #: Cancel the consumer after this many items (one stop per round, in turn).
    stops: tuple[int, ...]
    #: Where a stopped or failed round resumes: "progress", "error" or "checkpoint".
    resume: str
    #: Checkpoint: items held by the workers before one (drawn) is acknowledged.
    window: int = 1
    seed: int = 0


@dataclass
class Scenario:
    behaviour: Behaviour
    consumer: Consumer
    log: list[str] = field(default_factory=list)


def allowed(case: int) -> bool:
    return case not in KNOWN_OPEN


@st.composite
def faults(draw: st.DrawFn, *, page: int, pages: int, cursor: bool) -> dict[int, Fault]:
    kinds = ["429", "500", "502", "503", "empty"]
    if not cursor:
        kinds.append("stale")
    if allowed(3):
        kinds.append("error200")
    out: dict[int, Fault] = {}
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, max(0, pages))) * page
        kind = draw(st.sampled_from(kinds))
        times = draw(st.integers(1, 2 if kind in ("empty", "stale") else 7))
        out[where] = Fault(kind, times, draw(st.sampled_from(RETRY_FORMS)))  # type: ignore[arg-type]
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    cursor = draw(st.booleans())
    n = draw(st.integers(0, 240))
    page = draw(st.sampled_from([5, 10, 20, 50]))
    pages = n // page + 1
    moves = draw(
        st.sampled_from(["static", "grow", "shrink"] if allowed(5) else ["static", "grow"])
    )
    if cursor and moves == "shrink":
        moves = "static"  # a cursor names a place in the data, not a position
    kw: dict[str, Any] = {
        "n": n,
        "cursor": cursor,
        "faults": draw(faults(page=page, pages=pages, cursor=cursor)),
        "slow_last": draw(st.booleans()),
    }
    if moves != "static":
        at = draw(st.integers(0, pages)) * page
        kw[moves] = (at, draw(st.integers(1, 30)))
    if draw(st.booleans()):
        kw["cap"] = draw(st.integers(1, page))
    if allowed(3) and draw(st.booleans()):
        kw["blip"] = (draw(st.integers(0, pages)) * page, draw(st.floats(0.1, 2.0)))
    if cursor:
        if allowed(1):
            kw["over"] = draw(st.integers(0, 7))
        kw["salted"] = draw(st.booleans())
        kw["token_len"] = draw(st.sampled_from([8, 64, 2_000])) if allowed(6) else 8
        if draw(st.integers(0, 5)) == 0:
            kw["loop_at"] = draw(st.integers(1, pages)) * page
    else:
        kw["over"] = draw(st.integers(0, 3))
        total = draw(st.sampled_from(["exact", "absent", "low", "high", "moving"]))
        if total == "low" and not allowed(4):
            kw["faults"] = {o: f for o, f in kw["faults"].items() if f.kind != "empty"}
        kw["total"], kw["total_delta"] = total, draw(st.integers(1, 12))
        # Clamping is told from data only by an exact total (or a checkpoint's
        # keys): a resumed scan has no memory of the last page.
        kw["clamp"] = total == "exact" and moves == "static" and draw(st.booleans())
    stops = tuple(draw(st.lists(st.integers(1, max(1, n)), max_size=3)))
    if kw.get("loop_at") is not None:
        # A looping listing has no "rest" to resume: across a restart it hands
        # out again what the last life saw (no bounded memory can tell).
        stops = ()
    resumes = ["progress", "checkpoint"] + (["error"] if allowed(2) and not cursor else [])
    if cursor and stops and not allowed(1):
        resumes.remove("progress")  # a token alone cannot resume mid-page (case 1)
    consumer = Consumer(
        page_size=page,
        concurrency=1 if moves != "static" else draw(st.integers(1, 8)),
        slow=draw(st.sampled_from([0, 0, 3, 40])),
        stops=stops,
        resume=draw(st.sampled_from(resumes)),
        window=draw(st.integers(1, 12)),
        seed=draw(st.integers(0, 2**16)),
    )
    return Scenario(Behaviour(**kw), consumer)


# --- running one example ---------------------------------------------------------------


@dataclass
class Round:
    got: list[str]
    error: AiobatchError | None
    stopped: bool
    next_offset: int
    next_token: str | None


class Run:
    def __init__(self, sc: Scenario, model: Model, client: BatchClient) -> None:
        self.sc, self.model, self.client = sc, model, client
        self.c = sc.consumer
        self.rng = random.Random(self.c.seed)
        self.checkpoint = Checkpoint() if self.c.resume == "checkpoint" else None
        self.acked: list[str] = []
        self.held: list[Any] = []

    def scan(self, offset: int, token: str | None) -> ItemIterator[Any]:
        c, cp = self.c, self.checkpoint
        opts: dict[str, Any] = {"page_size": c.page_size, "concurrency": c.concurrency}
        if cp is not None:
            opts["checkpoint"] = cp
        elif self.sc.behaviour.cursor:
            opts["start_token"] = token
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

    async def round(self, offset: int, token: str | None, stop: int | None) -> Round:
        it = self.scan(offset, token)
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
        return Round(got, error, stopped, p.next_offset, p.next_token)


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
    offset, token = 0, None
    stops = list(c.stops)
    last: Round | None = None
    acked_before: set[str] = set()
    resumable = r.checkpoint is not None or not b.clamp
    for _ in range(MAX_ROUNDS):
        before = offset if r.checkpoint is None else None
        if before:
            r.model.honest.add(before)
        last = await r.round(offset, token, stops.pop(0) if stops else None)
        sc.log.append(f"round: {len(last.got)} items, error={last.error!r:.200}")
        if r.checkpoint is not None:
            again = set(last.got) & acked_before
            assert not again, f"handed out again after its ack: {sorted(again)[:3]}"
            if last.error is not None or last.stopped:
                r.kill()
            acked_before = set(r.acked)
        received += last.got
        if last.error is not None:
            err = last.error
            assert isinstance(err, AiobatchError)
            if allowed(6):
                assert len(str(err)) < 4_000, "server text in messages is cut"
            resume = getattr(err, "offset", None)
            if before is not None and not b.cursor and allowed(2) and resume is not None:
                assert resume == before + len(last.got), (resume, before, len(last.got))
            if c.resume == "error" and resume is not None:
                offset = resume
            else:
                offset, token = last.next_offset, last.next_token
            if b.loop_at is not None or not resumable:
                break  # a looping server has no rest: one typed error is the answer
            continue
        if not last.stopped or not resumable:
            break
        offset, token = last.next_offset, last.next_token
    assert last is not None
    truth = model_truth(r.model)
    if b.loop_at is not None and last.error is not None:
        assert_prefix(received, truth, r)
        return
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


@settings(settings.get_profile(PROFILE))
@given(sc=scenarios())
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

"""What the property test draws: a server ``Behaviour`` (``model.py``) and a
``Consumer``, combined into a ``Scenario``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from aiobatch import RetryPolicy

from .model import Behaviour, Fault

_POLICY = RetryPolicy(random=lambda: 0.0)  # as the property test's client
#: How long the client keeps re-asking a doubted empty answer (two re-asks, a
#: retry's backoff apart).  A blip that outlasts it, where no total tells the
#: client that items are missing, looks exactly like the end of the listing:
#: no client can tell them apart, so such blips are drawn shorter.
REASK_HORIZON = _POLICY.backoff(0) + _POLICY.backoff(1)

#: Issue 20's cases left out of the draws while their fix is not merged (none
#: now): a drawn behaviour that reproduces one of them is skipped while its
#: number is here.
#: 1: cursor over-delivery; 2: an error's resume point past what was received;
#: 3: 200 error bodies / blips believed as the end; 4: a low total plus an empty
#: answer at it; 5: a listing shrinking at the front; 6: unbounded tokens.
KNOWN_OPEN: frozenset[int] = frozenset()
if "KNOWN_OPEN" in os.environ:  # e.g. KNOWN_OPEN= make fuzz: draw every behaviour
    KNOWN_OPEN = frozenset(int(c) for c in os.environ["KNOWN_OPEN"].split(",") if c.strip())

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
        kw["total"], kw["total_delta"] = total, draw(st.integers(1, 12))
        if total == "absent" and kw.pop("shrink", None) is not None:
            # Offsets that shift back with no total to show it: the next page
            # simply starts one item late, which no offset reader can see
            # (issue 20 case 5 is told by the total going down).
            moves = "static"
        if total == "low" and not allowed(4):
            kw["faults"] = {o: f for o, f in kw["faults"].items() if f.kind != "empty"}
        elif total == "low" and n > kw["total_delta"] and draw(st.booleans()):
            # One empty answer exactly at the (low) total: case 4's probe.  (At a
            # total of 0 the probe is the first page: an empty job, as far as
            # anyone can tell.)
            kw["faults"][n - kw["total_delta"]] = Fault("empty", 1)
        # Clamping is told from data only by an exact total (or a checkpoint's
        # keys): a resumed scan has no memory of the last page.
        kw["clamp"] = total == "exact" and moves == "static" and draw(st.booleans())
    if "blip" in kw and (cursor or kw["total"] in ("absent", "low")):
        at, length = kw["blip"]
        kw["blip"] = (at, min(length, 0.9 * REASK_HORIZON))
    stops = tuple(draw(st.lists(st.integers(1, max(1, n)), max_size=3)))
    if kw.get("loop_at") is not None:
        # A looping listing has no "rest" to resume: across a restart it hands
        # out again what the last life saw (no bounded memory can tell).
        stops = ()
    resumes = ["progress", "checkpoint"] + (["error"] if allowed(2) else [])
    if cursor and stops and not allowed(1):
        resumes.remove("progress")  # a token alone cannot resume mid-page (case 1)
    resume = draw(st.sampled_from(resumes))
    if moves == "shrink" and resume != "checkpoint":
        # A plain resume point is an offset and nothing more: when the front of
        # the listing shrinks before the resumed scan's first page, every offset
        # moved back and that page's total is all the new scan knows (not the
        # one the consumer saw before), so it starts late and no client can
        # tell.  A checkpoint remembers the total (a lower one is drift); plain
        # shrinking scans run one round: no stop, no fault that fails for good
        # (a 200 error body fails at once; a status, after the policy's retries).
        stops = ()
        kw["faults"] = {
            o: replace(f, times=min(f.times, _POLICY.max_retries))
            for o, f in kw["faults"].items()
            if f.kind != "error200"
        }
    if not cursor and kw["total"] == "low":
        _told_apart_at_low_total(kw, page=page, stops=stops, resume=resume)
    consumer = Consumer(
        page_size=page,
        concurrency=1 if moves != "static" else draw(st.integers(1, 8)),
        slow=draw(st.sampled_from([0, 0, 3, 40])),
        stops=stops,
        resume=resume,
        window=draw(st.integers(1, 12)),
        seed=draw(st.integers(0, 2**16)),
    )
    return Scenario(Behaviour(**kw), consumer)


def _told_apart_at_low_total(kw: dict[str, Any], *, page: int, stops: Any, resume: str) -> None:
    """Keep an empty answer at a low total only where a client can tell it from the end.

    A page that straddles the total is asked full-size (case 4) and shows the
    items past it.  But a request that starts exactly at the total, answered
    empty, is what the end of an honest listing of that length looks like, and
    believing it is the rule that spares every scan a spaced re-ask at its end.
    A request starts there when the total is a multiple of the page, when a
    silent cap shrinks the step, or when a round resumes there (a stop, or a
    checkpoint's watermark after an error, can fall anywhere).
    """
    n, delta = kw["n"], kw["total_delta"]
    grown = kw["grow"][1] if kw.get("grow") else 0
    lows = {max(0, n - delta), max(0, n + grown - delta)}
    if kw.get("shrink"):
        lows.add(max(0, n - kw["shrink"][1] - delta))
    apart = (
        kw.get("cap") is None
        and not stops
        and resume != "checkpoint"
        and all(low % page for low in lows)
    )
    if apart:
        return
    kw["faults"] = {o: f for o, f in kw["faults"].items() if not (f.kind == "empty" and o in lows)}
    if kw.get("blip") is not None and kw["blip"][0] in lows:
        del kw["blip"]


# --- running one example ---------------------------------------------------------------

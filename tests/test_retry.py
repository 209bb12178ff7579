"""Retry decisions (pure) and the retry loop (with a recording sleep)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from _servers import RecordingSleep
from multidict import CIMultiDict, CIMultiDictProxy

from aiobatch import _protocol as proto
from aiobatch._errors import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    TLSVerificationError,
)
from aiobatch._retry import RetryPolicy, call_with_retries, parse_retry_after, should_retry_header

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def status_error(status: int, **headers: str) -> APIStatusError:
    return proto.make_status_error(
        status=status,
        headers=CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})),
        body=b'{"detail":"x"}',
        method="GET",
        url_path="/p",
        now=NOW,
    )


def conn_error(*, sent: bool = True) -> APIConnectionError:
    return APIConnectionError("reset", method="GET", path="/p", request_sent=sent)


def make_policy(**kw: Any) -> RetryPolicy:
    kw.setdefault("random", lambda: 0.0)
    kw.setdefault("wall_clock", lambda: NOW)
    return RetryPolicy(**kw)


# --- backoff --------------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_capped_at_eight() -> None:
    p = make_policy()
    assert [p.backoff(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert p.backoff(10_000) == 8.0


@pytest.mark.parametrize(("rnd", "expected"), [(0.0, 4.0), (0.5, 3.5), (1.0, 3.0)])
def test_backoff_jitter_takes_up_to_a_quarter_off(rnd: float, expected: float) -> None:
    p = make_policy(random=lambda: rnd)
    assert p.backoff(3) == expected


def test_backoff_without_jitter_ignores_random() -> None:
    p = make_policy(jitter=0.0, random=lambda: 0.9)
    assert p.backoff(1) == 1.0


def test_policy_defaults_match_the_official_sdk() -> None:
    p = RetryPolicy()
    assert (p.max_retries, p.initial_delay, p.max_delay, p.jitter) == (5, 0.5, 8.0, 0.25)
    assert p.retry_statuses == frozenset({408, 409, 429, *range(500, 600)})
    assert 0.0 <= p.random() < 1.0
    assert "sleep" not in repr(p)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"jitter": 1.5}, "jitter must be within"),
        ({"jitter": -0.1}, "jitter must be within"),
        ({"initial_delay": -1.0}, "need 0 <= initial_delay <= max_delay"),
        ({"initial_delay": 9.0, "max_delay": 8.0}, "need 0 <= initial_delay <= max_delay"),
    ],
)
def test_policy_validation(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kw)


def test_with_max_retries_keeps_everything_else() -> None:
    sleep = RecordingSleep()
    p = make_policy(sleep=sleep, initial_delay=1.0).with_max_retries(2)
    assert p.max_retries == 2
    assert p.initial_delay == 1.0
    assert p.sleep is sleep


# --- decide: which failures are retried ------------------------------------------

RETRIED: list[tuple[str, Callable[[], AiobatchError]]] = [
    ("connection reset", lambda: conn_error()),
    ("connect refused", lambda: conn_error(sent=False)),
    ("timeout", lambda: APITimeoutError("t", request_sent=True)),
    ("408", lambda: status_error(408)),
    ("409", lambda: status_error(409)),
    ("429", lambda: status_error(429)),
    ("500", lambda: status_error(500)),
    ("502", lambda: status_error(502)),
    ("503", lambda: status_error(503)),
    ("504", lambda: status_error(504)),
    ("599", lambda: status_error(599)),
]

NEVER: list[tuple[str, Callable[[], AiobatchError]]] = [
    ("400", lambda: status_error(400)),
    ("401", lambda: status_error(401)),
    ("403", lambda: status_error(403)),
    ("404", lambda: status_error(404)),
    ("422", lambda: status_error(422)),
    ("418", lambda: status_error(418)),
    ("302", lambda: status_error(302, location="https://x")),
    ("TLS", lambda: TLSVerificationError("bad cert", request_sent=False)),
    ("decode", lambda: ResponseDecodeError("x", status=200, method="GET", path="/", snippet="")),
    ("too large", lambda: ResponseTooLargeError("x", limit=1024)),
    ("closed", lambda: ClientClosedError("closed")),
]


@pytest.mark.parametrize(("name", "make"), RETRIED, ids=[n for n, _ in RETRIED])
def test_retried_with_backoff(name: str, make: Callable[[], AiobatchError]) -> None:
    p = make_policy()
    assert [p.decide(n, make(), idempotent=True) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert p.decide(5, make(), idempotent=True) is None


@pytest.mark.parametrize(("name", "make"), NEVER, ids=[n for n, _ in NEVER])
def test_never_retried(name: str, make: Callable[[], AiobatchError]) -> None:
    p = make_policy()
    assert p.decide(0, make(), idempotent=True) is None
    assert p.decide(0, make(), idempotent=False) is None


def test_max_retries_zero_never_retries() -> None:
    p = make_policy(max_retries=0)
    assert p.decide(0, status_error(503), idempotent=True) is None
    assert p.decide(0, conn_error(sent=False), idempotent=False) is None


def test_custom_retry_statuses() -> None:
    p = make_policy(retry_statuses=frozenset({503}))
    assert p.decide(0, status_error(503), idempotent=True) == 0.5
    assert p.decide(0, status_error(500), idempotent=True) is None


# --- decide: non-idempotent requests ---------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: conn_error(sent=False), 0.5),  # provably never left: safe to replay
        (lambda: conn_error(sent=True), None),  # may have reached the server
        (lambda: APITimeoutError("t"), None),
        (lambda: APITimeoutError("connect", request_sent=False), 0.5),
        (lambda: status_error(429), 0.5),  # "not processed"
        (lambda: status_error(503), None),
        (lambda: status_error(500), None),
        (lambda: status_error(409), None),
        (lambda: status_error(408), None),
    ],
)
def test_non_idempotent(make: Callable[[], AiobatchError], expected: float | None) -> None:
    assert make_policy().decide(0, make(), idempotent=False) == expected


# --- decide: x-should-retry -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "header", "idempotent", "expected"),
    [
        (503, "false", True, None),
        (429, "false", True, None),
        (503, " FALSE ", True, None),
        (400, "true", True, 0.5),
        (404, "True", True, 0.5),
        (400, "true", False, 0.5),  # the server vouches for replaying it
        (503, "maybe", True, 0.5),  # unknown value: default rules
        (400, "maybe", True, None),
        (400, "", True, None),
    ],
)
def test_x_should_retry(status: int, header: str, idempotent: bool, expected: float | None) -> None:
    err = status_error(status, x_should_retry=header)
    assert make_policy().decide(0, err, idempotent=idempotent) == expected


def test_should_retry_header_values() -> None:
    assert should_retry_header({}) is None
    assert should_retry_header({"x-should-retry": "true"}) is True
    assert should_retry_header({"x-should-retry": "false"}) is False


# --- decide: Retry-After ------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry_after": "3"}, 3.0),
        ({"retry_after": "0"}, 0.0),
        ({"retry_after": "1.5"}, 1.5),
        ({"retry_after": " 2 "}, 2.0),
        ({"retry_after_ms": "250"}, 0.25),
        ({"retry_after_ms": "250", "retry_after": "30"}, 0.25),  # ms wins
        ({"retry_after_ms": "soon", "retry_after": "4"}, 4.0),  # bad ms: fall back
        ({"retry_after_ms": "-5", "retry_after": "4"}, 4.0),
        ({"retry_after": "soon"}, 0.5),  # unparsable: backoff
        ({"retry_after": "-1"}, 0.5),
        ({"retry_after": "NaN"}, 0.5),
        ({"retry_after": "inf"}, 0.5),
        ({"retry_after": "1e400"}, 0.5),
        ({"retry_after": ""}, 0.5),
        ({"retry_after_ms": "nan"}, 0.5),
        ({"retry_after": "60"}, 60.0),  # at the cap: still honoured
        ({"retry_after": "60.5"}, None),  # above max_retry_after: give up
        ({"retry_after_ms": "61000"}, None),
    ],
)
def test_retry_after_on_429(headers: dict[str, str], expected: float | None) -> None:
    assert make_policy().decide(0, status_error(429, **headers), idempotent=True) == expected


def test_retry_after_honoured_on_503_too() -> None:
    assert make_policy().decide(0, status_error(503, retry_after="2"), idempotent=True) == 2.0


def test_retry_after_does_not_resurrect_non_retryable_status() -> None:
    assert make_policy().decide(0, status_error(400, retry_after="2"), idempotent=True) is None


def test_retry_after_http_date() -> None:
    future = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
    past = datetime(2029, 12, 31, 0, 0, 0, tzinfo=UTC)
    p = make_policy()
    assert (
        p.decide(
            0, status_error(429, retry_after=format_datetime(future, usegmt=True)), idempotent=True
        )
        == 30.0
    )
    assert (
        p.decide(
            0, status_error(429, retry_after=format_datetime(past, usegmt=True)), idempotent=True
        )
        == 0.0
    )
    far = datetime(2030, 1, 1, 13, 0, 0, tzinfo=UTC)
    assert (
        p.decide(
            0, status_error(429, retry_after=format_datetime(far, usegmt=True)), idempotent=True
        )
        is None
    )


def test_parse_retry_after_direct() -> None:
    ci = CIMultiDict
    assert parse_retry_after(ci(), now=NOW) is None
    assert parse_retry_after(ci({"Retry-After": "12"}), now=NOW) == 12.0
    assert parse_retry_after(ci({"Retry-After-Ms": "1500"}), now=NOW) == 1.5
    assert parse_retry_after(ci({"Retry-After": "Wed, 01 Jan 2030 12:00:10 GMT"}), now=NOW) == 10.0
    # an HTTP-date with an unknown zone (-0000) is naive: treated as absent
    assert (
        parse_retry_after(ci({"Retry-After": "Wed, 01 Jan 2030 12:00:10 -0000"}), now=NOW) is None
    )


# --- Retry-After jitter: spread above the server's wait, never below it ----------------


@pytest.mark.parametrize(
    "headers",
    [
        {"retry_after": "0"},
        {"retry_after": "1"},
        {"retry_after": "2.5"},
        {"retry_after": "30"},
        {"retry_after_ms": "750"},
    ],
)
@pytest.mark.parametrize("rnd", [0.0, 0.25, 0.5, 0.999999])
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_jitter_is_never_below_the_server_delay(
    headers: dict[str, str], rnd: float, status: int
) -> None:
    p = make_policy(random=lambda: rnd)
    asked = parse_retry_after(
        CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}), now=NOW
    )
    assert asked is not None
    delay = p.decide(0, status_error(status, **headers), idempotent=True)
    assert delay is not None
    span = min(1.0, 0.1 * asked + 0.05)
    assert asked <= delay <= asked + span
    assert delay == pytest.approx(asked + span * rnd)


def test_retry_after_http_date_is_jittered_above_too() -> None:
    future = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
    p = make_policy(random=lambda: 0.5)
    header = format_datetime(future, usegmt=True)
    assert p.decide(0, status_error(429, retry_after=header), idempotent=True) == 10.0 + 0.5 * 1.0


def test_retries_after_one_shared_retry_after_are_spread() -> None:
    """Sixteen requests told "Retry-After: 1" at once must not all come back at 1.00 s."""
    rng = random.Random(7)
    p = make_policy(random=rng.random)
    err = status_error(429, retry_after="1")
    delays = [p.decide(0, err, idempotent=True) for _ in range(16)]
    assert all(d is not None and 1.0 <= d <= 1.15 for d in delays)
    assert len(set(delays)) == 16
    spread = [d for d in delays if d is not None]
    assert max(spread) - min(spread) > 0.05


def test_retry_after_jitter_is_capped_and_can_be_turned_off() -> None:
    assert make_policy(random=lambda: 0.999999).decide(
        0, status_error(429, retry_after="60"), idempotent=True
    ) == pytest.approx(61.0, abs=1e-5)
    p = make_policy(random=lambda: 0.9, retry_after_jitter_max=0.0)
    assert p.decide(0, status_error(429, retry_after="2"), idempotent=True) == 2.0
    p = make_policy(random=lambda: 1.0, retry_after_jitter=0.5, retry_after_jitter_max=10.0)
    assert p.decide(0, status_error(429, retry_after="4"), idempotent=True) == 4.0 + 2.05


def test_retry_after_limit_applies_to_the_server_delay_not_the_jitter() -> None:
    p = make_policy(random=lambda: 0.999999)  # 60 s + up to 1 s of jitter is still honoured
    delay = p.decide(0, status_error(429, retry_after="60"), idempotent=True)
    assert delay is not None
    assert delay > 60.0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"retry_after_jitter": -0.1}, "retry_after_jitter must be within"),
        ({"retry_after_jitter": 1.5}, "retry_after_jitter must be within"),
        ({"retry_after_jitter": float("nan")}, "retry_after_jitter must be within"),
        ({"retry_after_jitter_max": -1.0}, "retry_after_jitter_max must be >= 0"),
        ({"retry_after_jitter_max": float("inf")}, "must be finite"),
        ({"max_delay": float("inf")}, "must be finite"),
        ({"initial_delay": float("nan")}, "must be finite"),
        ({"max_retry_after": float("nan")}, "max_retry_after must be >= 0"),
        ({"max_retry_after": -1.0}, "max_retry_after must be >= 0"),
    ],
)
def test_policy_validation_of_delays(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kw)


def test_max_retry_after_is_configurable() -> None:
    p = make_policy(max_retry_after=5.0)
    assert p.decide(0, status_error(429, retry_after="5"), idempotent=True) == 5.0
    assert p.decide(0, status_error(429, retry_after="6"), idempotent=True) is None


# --- call_with_retries --------------------------------------------------------------


class Script:
    """An attempt function that raises the scripted errors, then returns."""

    def __init__(self, *outcomes: AiobatchError | BaseException | str) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Hooks:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def before_attempt(self) -> None:
        self.events.append("before")

    def on_retry(self, error: AiobatchError, delay: float) -> None:
        self.events.append(f"retry {type(error).__name__} {delay}")

    def on_success(self) -> None:
        self.events.append("success")


async def test_loop_retries_then_succeeds_with_recorded_delays() -> None:
    sleep = RecordingSleep()
    script = Script(conn_error(), status_error(503), status_error(429, retry_after="3"), "ok")
    result = await call_with_retries(
        make_policy(sleep=sleep), script, idempotent=True, what="GET /p"
    )
    assert result == "ok"
    assert script.calls == 4
    assert sleep.delays == [0.5, 1.0, 3.0]


async def test_loop_makes_exactly_max_retries_plus_one_attempts() -> None:
    sleep = RecordingSleep()
    errors = [status_error(500) for _ in range(4)]
    script = Script(*errors)
    with pytest.raises(APIStatusError) as info:
        await call_with_retries(
            make_policy(sleep=sleep, max_retries=3), script, idempotent=True, what="x"
        )
    assert script.calls == 4
    assert info.value is errors[-1]
    assert sleep.delays == [0.5, 1.0, 2.0]


async def test_loop_default_policy_makes_six_attempts() -> None:
    sleep = RecordingSleep()
    script = Script(*[conn_error() for _ in range(6)])
    with pytest.raises(APIConnectionError):
        await call_with_retries(make_policy(sleep=sleep), script, idempotent=True, what="x")
    assert script.calls == 6
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0, 8.0]


async def test_loop_gives_up_at_once_on_non_retryable() -> None:
    sleep = RecordingSleep()
    script = Script(status_error(404), "never")
    with pytest.raises(APIStatusError) as info:
        await call_with_retries(make_policy(sleep=sleep), script, idempotent=True, what="x")
    assert info.value.status_code == 404
    assert script.calls == 1
    assert sleep.delays == []


async def test_loop_retry_after_too_long_raises_rate_limit_with_retry_after() -> None:
    sleep = RecordingSleep()
    script = Script(status_error(429, retry_after="3600"), "never")
    with pytest.raises(RateLimitError) as info:
        await call_with_retries(make_policy(sleep=sleep), script, idempotent=True, what="x")
    assert info.value.retry_after == 3600.0
    assert script.calls == 1
    assert sleep.delays == []


async def test_loop_non_idempotent_replays_only_unsent_and_429() -> None:
    sleep = RecordingSleep()
    script = Script(conn_error(sent=False), status_error(429), "created")
    assert (
        await call_with_retries(make_policy(sleep=sleep), script, idempotent=False, what="POST")
        == "created"
    )
    assert sleep.delays == [0.5, 1.0]

    sleep2 = RecordingSleep()
    script2 = Script(conn_error(sent=True), "never")
    with pytest.raises(APIConnectionError):
        await call_with_retries(make_policy(sleep=sleep2), script2, idempotent=False, what="POST")
    assert script2.calls == 1
    assert sleep2.delays == []


async def test_loop_does_not_swallow_foreign_exceptions() -> None:
    sleep = RecordingSleep()
    script = Script(KeyError("bug"), "never")
    with pytest.raises(KeyError):
        await call_with_retries(make_policy(sleep=sleep), script, idempotent=True, what="x")
    assert script.calls == 1
    assert sleep.delays == []


async def test_loop_calls_hooks_in_order() -> None:
    hooks = Hooks()
    script = Script(status_error(502), "ok")
    await call_with_retries(
        make_policy(sleep=RecordingSleep()), script, idempotent=True, what="x", hooks=hooks
    )
    assert hooks.events == ["before", "retry InternalServerError 0.5", "before", "success"]


async def test_loop_hooks_on_final_failure() -> None:
    hooks = Hooks()
    script = Script(status_error(401))
    with pytest.raises(APIStatusError):
        await call_with_retries(
            make_policy(sleep=RecordingSleep()), script, idempotent=True, what="x", hooks=hooks
        )
    assert hooks.events == ["before"]


async def test_loop_logs_retries_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiobatch")
    script = Script(status_error(503), "ok")
    await call_with_retries(
        make_policy(sleep=RecordingSleep()), script, idempotent=True, what="GET /p"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "retrying GET /p in 0.50s after GET /p -> 503: x (retry 1)"
    ]


async def test_default_sleep_is_anyio_sleep() -> None:
    import anyio

    assert RetryPolicy().sleep is anyio.sleep

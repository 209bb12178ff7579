"""A fake clock for tests: a ``RetryPolicy`` whose sleeps move it (and the
simulator's clock) forward, so nothing ever sleeps for real."""

from __future__ import annotations

import asyncio
import functools

import pytest

from aiobatch import BatchClient, RetryPolicy
from aiobatch.cli import _context
from aiobatch.testing import Simulator


class FakeTime:
    """``sleep`` + ``monotonic`` for a ``RetryPolicy``; every sleep is recorded and
    advances the simulator (when given), so running jobs progress as time passes."""

    def __init__(self, sim: Simulator | None = None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.sim = sim

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        if self.sim is not None:
            self.sim.advance(delay)
        await asyncio.sleep(0)

    def monotonic(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        """The simulator's clock when there is one (so ``created_at`` and the
        client's clock agree), else a fixed epoch plus the time slept."""
        return self.sim.now() if self.sim is not None else 1.8e9 + self.now

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            sleep=self.sleep,
            monotonic=self.monotonic,
            wall_clock=self.wall_clock,
            random=lambda: 0.0,
        )


def fake_time(monkeypatch: pytest.MonkeyPatch, clock: FakeTime) -> FakeTime:
    """Every client the CLI builds sleeps on ``clock`` (a fake: nothing sleeps for real)."""
    client = functools.partial(BatchClient, retry=clock.policy())
    monkeypatch.setattr(_context, "BatchClient", client)
    return clock

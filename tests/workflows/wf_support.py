"""A fake clock for workflow tests: the client's policy sleeps by moving it (and
the simulator's clock) forward, so nothing ever sleeps for real."""

from __future__ import annotations

import asyncio

from aiobatch import RetryPolicy
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

    def policy(self) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, monotonic=self.monotonic, random=lambda: 0.0)

"""pytest fixtures: a running simulator per test.

Enable with ``pytest_plugins = ["aiobatch.testing.pytest_plugin"]`` in a
top-level ``conftest.py``.  Needs pytest-asyncio.

- ``batch_simulator``: a started ``Simulator`` with one job of 250 items
  (``DEFAULT_TEST_JOB``), key ``test-key`` and a frozen clock.
- ``batch_simulator_factory``: ``await factory(jobs, **Simulator kwargs)`` starts
  more, all stopped at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

import pytest_asyncio

from ._jobs import SimClock, SimJob
from ._server import Simulator

__all__ = ["DEFAULT_TEST_JOB", "SimulatorFactory", "batch_simulator", "batch_simulator_factory"]

DEFAULT_TEST_JOB = SimJob(job_id="bjb-test-0001", total_items=250, seed=1)


class SimulatorFactory(Protocol):
    async def __call__(self, jobs: Iterable[SimJob] = ..., **kwargs: Any) -> Simulator: ...


@pytest_asyncio.fixture
async def batch_simulator_factory() -> AsyncIterator[SimulatorFactory]:
    started: list[Simulator] = []

    async def factory(jobs: Iterable[SimJob] = (DEFAULT_TEST_JOB,), **kwargs: Any) -> Simulator:
        kwargs.setdefault("clock", SimClock.frozen_at())
        sim = Simulator(jobs, **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    try:
        yield factory
    finally:
        for sim in reversed(started):
            await sim.stop()


@pytest_asyncio.fixture
async def batch_simulator(batch_simulator_factory: SimulatorFactory) -> Simulator:
    return await batch_simulator_factory()

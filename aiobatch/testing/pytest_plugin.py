"""pytest fixtures: a running simulator per test.

Installed with aiobatch as a ``pytest11`` entry point named
``aiobatch.testing.pytest_plugin``, so pytest loads it by itself; the fixtures are
opt-in (nothing starts unless a test asks for one) and loading the plugin
changes nothing else.  A ``pytest_plugins = ["aiobatch.testing.pytest_plugin"]``
line in a ``conftest.py`` (needed only where entry points are not loaded, e.g.
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``) is harmless: pytest sees the same name and
does not register it twice.  ``-p no:aiobatch.testing.pytest_plugin`` turns it off.

The fixtures are async: they need pytest-asyncio.  Without it the plugin still
loads quietly, and a test that asks for a fixture fails saying what to install.

- ``batch_simulator``: a started ``Simulator`` with one job of 250 items
  (``DEFAULT_TEST_JOB``), key ``test-key`` and a frozen clock.
- ``batch_simulator_factory``: ``await factory(jobs, **Simulator kwargs)`` starts
  more, all stopped at teardown.
- ``batch_client``: an open ``BatchClient`` on ``batch_simulator``
  (``sim.client()``: its retry policy sleeps on the simulator's clock, so
  retries and 429 pauses take no real time), closed at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from ._jobs import SimClock, SimJob
from ._server import Simulator

if TYPE_CHECKING:
    from .._client import BatchClient

__all__ = [
    "DEFAULT_TEST_JOB",
    "SimulatorFactory",
    "batch_client",
    "batch_simulator",
    "batch_simulator_factory",
]

DEFAULT_TEST_JOB = SimJob(job_id="bjb-test-0001", total_items=250, seed=1)


class SimulatorFactory(Protocol):
    async def __call__(self, jobs: Iterable[SimJob] = ..., **kwargs: Any) -> Simulator: ...


async def _factory() -> AsyncIterator[SimulatorFactory]:
    """``await batch_simulator_factory(jobs, **Simulator kwargs)`` starts a simulator
    (frozen clock unless ``clock=`` is given); all are stopped at teardown."""
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


async def _default(batch_simulator_factory: SimulatorFactory) -> Simulator:
    """A started ``Simulator`` with ``DEFAULT_TEST_JOB`` (250 items, id
    ``bjb-test-0001``), key ``test-key`` and a frozen clock."""
    return await batch_simulator_factory()


async def _client(batch_simulator: Simulator) -> AsyncIterator[BatchClient]:
    """An open ``BatchClient`` on ``batch_simulator`` whose retry policy sleeps on
    the simulator's clock (``sim.client()``); closed at teardown."""
    async with batch_simulator.client() as client:
        yield client


try:
    import pytest_asyncio
except ImportError:  # the plugin loads wherever aiobatch is installed: stay quiet

    def _needs_pytest_asyncio(name: str) -> Any:
        def fixture() -> None:
            pytest.fail(
                f"the {name} fixture (aiobatch.testing) is async and needs pytest-asyncio: "
                "pip install pytest-asyncio",
                pytrace=False,
            )

        fixture.__name__ = name
        fixture.__doc__ = "Needs pytest-asyncio (not installed)."
        return pytest.fixture(name=name)(fixture)

    batch_simulator_factory = _needs_pytest_asyncio("batch_simulator_factory")
    batch_simulator = _needs_pytest_asyncio("batch_simulator")
    batch_client = _needs_pytest_asyncio("batch_client")
else:
    # Function-scoped on the test's own loop, whatever the project's default loop scope.
    batch_simulator_factory = pytest_asyncio.fixture(
        _factory, name="batch_simulator_factory", loop_scope="function"
    )
    batch_simulator = pytest_asyncio.fixture(
        _default, name="batch_simulator", loop_scope="function"
    )
    batch_client = pytest_asyncio.fixture(_client, name="batch_client", loop_scope="function")

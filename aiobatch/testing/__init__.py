"""A local simulator of the LlamaCloud batch-processing API.

Test your own code against it in-process (``Simulator``), from pytest (the
``batch_simulator`` fixture of ``aiobatch.testing.pytest_plugin``), in a
subprocess (``SimulatorProcess``, for benchmarks), or standalone
(``python -m aiobatch.testing``).  Jobs are described (``SimJob``), not stored,
so a job of millions of items costs no memory; ``Faults`` makes the server
misbehave in precise, repeatable ways.
"""

from __future__ import annotations

from ._faults import Faults, Trigger
from ._jobs import SimClock, SimJob
from ._layout import DEFAULT_MIX
from ._server import Simulator
from ._stats import RequestRecord, Stats

__all__ = [
    "DEFAULT_MIX",
    "Faults",
    "RequestRecord",
    "SimClock",
    "SimJob",
    "Simulator",
    "Stats",
    "Trigger",
]

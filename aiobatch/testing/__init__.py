"""A local simulator of the LlamaCloud batch-processing API.

Test your own code against it in-process (``Simulator``), from pytest (the
``batch_simulator`` / ``batch_simulator_factory`` fixtures of
``aiobatch.testing.pytest_plugin``), in a subprocess (``SimulatorProcess``, for
benchmarks), or standalone (``python -m aiobatch.testing``).  Jobs are
described (``SimJob``), not stored, so a job of millions of items costs no
memory; ``Faults`` makes the server misbehave in precise, repeatable ways.
``MockTransport(handler)`` answers a client's requests with a function, no
server at all.
"""

from __future__ import annotations

from typing import Any

from ._batches import BatchStore, SimBatch
from ._cli import add_arguments, build_parser, run_simulator, serve
from ._faults import Faults, Trigger
from ._jobs import SimClock, SimItem, SimJob
from ._layout import DEFAULT_MIX
from ._mock import MockRequest, MockTransport
from ._process import SimulatorProcess
from ._registry import CreateRecord
from ._server import Simulator
from ._stats import RequestRecord, Stats
from ._webhook_bodies import ENVELOPES as _ENVELOPES
from ._webhooks import WebhookDelivery

#: The shapes ``Faults.webhook_envelope`` may name (besides ``"drawn"``).
WEBHOOK_ENVELOPES = tuple(_ENVELOPES)

__all__ = [
    "DEFAULT_MIX",
    "WEBHOOK_ENVELOPES",
    "BatchStore",
    "CreateRecord",
    "Faults",
    "MockRequest",
    "MockTransport",
    "RequestRecord",
    "SimBatch",
    "SimClock",
    "SimItem",
    "SimJob",
    "Simulator",
    "SimulatorProcess",
    "Stats",
    "Trigger",
    "WebhookDelivery",
    "add_arguments",
    "batch_client",
    "batch_simulator",
    "batch_simulator_factory",
    "build_parser",
    "run_simulator",
    "serve",
]

_FIXTURES = ("batch_client", "batch_simulator", "batch_simulator_factory")


def __getattr__(name: str) -> Any:
    # The fixtures need pytest-asyncio, which a standalone server does not have:
    # import them only when asked for.
    if name in _FIXTURES:
        from . import pytest_plugin

        return getattr(pytest_plugin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

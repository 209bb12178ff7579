"""Test helpers: a recording sleep, and small loopback servers (real sockets).

``serve(app)`` runs an ``aiohttp.web`` application on 127.0.0.1 (port 0);
``raw_server(handler)`` runs a bare ``asyncio.start_server`` for framing faults
that aiohttp's own server would never produce (lying Content-Length, a dropped
connection, no answer at all).  Both record what they received.
"""

from __future__ import annotations


class RecordingSleep:
    """A ``sleep`` for RetryPolicy: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)

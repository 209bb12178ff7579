"""Helpers for the CLI tests: run one command line in-process, against a simulator."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aiobatch.cli import run
from aiobatch.testing import Simulator

ENV_VARS = (
    "LLAMA_CLOUD_API_KEY",
    "LLAMA_PARSE_API_KEY",
    "LLAMA_CLOUD_BASE_URL",
    "LLAMA_CLOUD_WEBHOOK_SIGNING_SECRET",
)


def clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide any key / base URL the developer's shell exports."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class TtyStringIO(io.StringIO):
    """A stream that claims to be a terminal (to exercise progress bars)."""

    def isatty(self) -> bool:
        return True


@dataclass
class Result:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()

    def jsonl(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def ids(self) -> list[str]:
        return [d["item_id"] for d in self.jsonl()]


def conn(sim: Simulator) -> list[str]:
    assert sim.api_key is not None
    return ["--base-url", sim.base_url, "--api-key", sim.api_key]


async def cli(
    *argv: str, sim: Simulator | None = None, stderr: io.StringIO | None = None
) -> Result:
    """``aiobatch ARGV`` in this event loop (the simulator keeps serving meanwhile)."""
    args = list(argv) + (conn(sim) if sim is not None else [])
    out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
    code = await run(args, stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


class Gate:
    """A ``sleep`` for the simulator that blocks every request after the first
    ``allow`` ones until ``release()``: a scan stops at a known page, as if the
    process were killed there.  Use with ``Faults(latency_ms=...)`` so the
    simulator calls it once per request."""

    def __init__(self, allow: int) -> None:
        self.allow = allow
        self.calls = 0
        self.blocked = asyncio.Event()
        self._open = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.calls += 1
        if self.calls > self.allow:
            self.blocked.set()
            await self._open.wait()

    def release(self) -> None:
        self._open.set()


async def wait_for(pred: Callable[[], bool], *, turns: int = 5000) -> None:
    """Poll ``pred()`` every millisecond until it holds (5 s at most)."""
    for _ in range(turns):
        if pred():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


#: ``python -c`` for a child that Ctrl-C reaches even when started in the
#: background (a shell that starts us there ignores SIGINT, and children inherit it).
CHILD_MAIN = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from aiobatch.cli import main; sys.exit(main(sys.argv[1:]))"
)


def child_env() -> dict[str, str]:
    """The environment of a child ``aiobatch``: no key or base URL of the
    developer's shell, warnings as errors."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["PYTHONWARNINGS"] = "error"
    return env


async def start_cli(*argv: str) -> asyncio.subprocess.Process:
    """``aiobatch ARGV`` in a subprocess (stdout dropped, stderr piped)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD_MAIN,
        *argv,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )


Runner = Callable[..., Awaitable[Result]]


async def drive(sim: Simulator, task: asyncio.Task[int], step: float) -> int:
    """Advance the simulator's clock while ``task`` (a polling command) runs."""
    while not task.done():
        sim.advance(step)
        await asyncio.sleep(0.001)
    return await task

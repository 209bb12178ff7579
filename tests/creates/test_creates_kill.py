"""``aiobatch jobs retry-failed`` killed (Ctrl-C, SIGTERM, kill -9) while a
create is in flight, in a real process: the record written before the request
left is on disk, and the same command again finds the job instead of making a
second one.  Real time here (a subprocess has no fake clock): the job exists,
so the rerun finds it without waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from create_server import CreateServer, running

SRC = "bjb-hostile-src"
GUARD = 60.0  # seconds: only so that a broken build fails instead of hanging
# A shell that starts us in the background ignores SIGINT, and children inherit
# that: restore Python's handler so that Ctrl-C means the same everywhere.
MAIN = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from aiobatch.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
async def server() -> AsyncIterator[CreateServer]:
    srv = CreateServer(clock=time.time, statuses=["failed", "completed"] * 15)  # 3 chunks
    async with running(srv):
        yield srv


async def command(server: CreateServer, cwd: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_")}
    env["PYTHONWARNINGS"] = "error"
    argv = ["jobs", "retry-failed", "--job-id", SRC, "--chunk-size", "5", "-q"]
    argv += ["--base-url", server.url, "--api-key", "sk-hostile", "--project-id", "prj-hostile"]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        MAIN,
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
async def test_killed_mid_create_then_the_same_command_finishes(
    sig: signal.Signals, server: CreateServer, tmp_path: Path
) -> None:
    server.script = ["ok", "block_after"]  # the second job is made, its answer never sent
    async with asyncio.timeout(GUARD):
        proc = await command(server, tmp_path)
        await server.blocked.wait()
        proc.send_signal(sig)
        code = await proc.wait()
        assert code == (130 if sig == signal.SIGINT else -sig)
        assert len(server.created) == 2
        proc = await command(server, tmp_path)
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert len(server.created) == 3  # 15 failed items, chunks of 5: three jobs, none twice
    assert server.per_item() == dict.fromkeys(server.failed(), 1)

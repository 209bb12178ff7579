"""``SimulatorProcess``: the simulator in its own process, so a benchmark's
client and server do not share one event loop or one core."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import anyio

__all__ = ["SimulatorProcess"]

_LINE = re.compile(r"^(base_url|api_key|job): (\S+)")


class SimulatorProcess:
    """Run ``python -m aiobatch.testing --port 0 ...`` and read where it listens::

        with SimulatorProcess(items=100_000, args=["--latency-ms", "5"]) as proc:
            client = BatchClient(api_key=proc.api_key, base_url=proc.base_url)

    Also an async context manager.  ``args`` are extra CLI flags (see
    ``python -m aiobatch.testing --help``).  Stopping sends SIGTERM (a clean
    shutdown), then kills after ``stop_timeout``.
    """

    def __init__(
        self,
        *,
        items: int = 1000,
        jobs: int = 1,
        seed: int = 0,
        api_key: str = "test-key",
        args: Sequence[str] = (),
        python: str | None = None,
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.command = [
            python or sys.executable,
            "-m",
            "aiobatch.testing",
            "--port",
            "0",
            "--items",
            str(items),
            "--jobs",
            str(jobs),
            "--seed",
            str(seed),
            "--api-key",
            api_key,
            *args,
        ]
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.base_url = ""
        self.api_key = api_key
        self.job_ids: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("already started")
        env = dict(os.environ)
        # The child must import this very aiobatch, installed or not.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
        )
        assert self._proc.stdout is not None
        # A reader thread keeps draining stdout so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(self._proc.stdout,), daemon=True).start()
        try:
            self._read_banner()
        except BaseException:
            self.stop()
            raise
        return self

    def _drain(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self._lines.put(line)
        self._lines.put(None)

    def _read_banner(self) -> None:
        while True:
            try:
                line = self._lines.get(timeout=self.startup_timeout)
            except queue.Empty:
                raise TimeoutError(
                    f"simulator did not start within {self.startup_timeout}s"
                ) from None
            if line is None:
                code = self._proc.wait() if self._proc else None
                raise RuntimeError(f"simulator exited during startup (exit code {code})")
            m = _LINE.match(line)
            if m is None:
                if line.startswith("faults:"):
                    return  # the banner's last line
                continue
            key, value = m.groups()
            if key == "base_url":
                self.base_url = value
            elif key == "api_key":
                self.api_key = value
            else:
                self.job_ids.append(value)

    def stop(self) -> int | None:
        """Stop the server; its exit code.  Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: the server shuts down cleanly
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

"""Case 22: a soak of 2,000 scans in one process, in a subprocess running with
``PYTHONASYNCIODEBUG=1`` and ``-W error::ResourceWarning``: no unclosed
session, connector or stream, no unretrieved task exception, and the open file
descriptors and asyncio tasks do not grow (see ``soak_worker.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("soak_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def run_soak(scans: int, **env: str) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(WORKER), str(scans)],
        env={**os.environ, "PYTHONASYNCIODEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result, proc.stderr


@pytest.mark.slow
def test_case22_soak_two_thousand_scans() -> None:
    result, stderr = run_soak(2000)
    assert result["debug"] is True
    assert result["resource_warnings_are_errors"] is True
    assert result["scans"] == 2000
    assert result["problems"] == []
    assert stderr == ""  # nothing printed: no warning, no "Unclosed ...", no traceback
    # Twenty clients of a hundred scans each; measured after each client's scans
    # and after each close, the numbers do not move.
    fds, tasks = result["fds"], result["tasks"]
    assert len(fds) == len(tasks) == 20
    assert max(fds) - min(fds) <= 2, fds
    assert fds[-1] <= fds[0], fds
    assert tasks == [tasks[0]] * 20, tasks
    assert tasks[0] <= 2, tasks
    live_fds, live_tasks = result["live_fds"], result["live_tasks"]
    assert max(live_fds) - min(live_fds) <= 4, live_fds
    assert live_tasks == [live_tasks[0]] * 20, live_tasks  # the scan supervisor, no more
    assert live_tasks[0] == tasks[0] + 1


def test_case22_soak_detects_a_leak() -> None:
    """The control: the same harness does see an unclosed session and a stray task."""
    result, _ = run_soak(10, SOAK_LEAK="1")
    # -W error::ResourceWarning turned aiohttp's warning into an (unraisable) error.
    problems = result["problems"]
    assert any("ResourceWarning: Unclosed client session" in p for p in problems), problems
    assert result["tasks"][-1] > result["tasks"][0]

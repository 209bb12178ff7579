"""The README's quickstart runs as written (against the built-in simulator)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("```python", text.index("## Quickstart")) + len("```python\n")
    return text[start : text.index("```", start)]


def test_quickstart_runs_as_written() -> None:
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", quickstart()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "100 1250"  # one page of failed items, and their total
    assert lines[-1] == "completed 100.0"

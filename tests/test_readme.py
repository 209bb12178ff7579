"""The README's code runs as written (against the built-in simulator): the
quickstart, the Arrow example, and both examples of the simulator section."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiobatch.testing import SimJob, Simulator

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


# --- the other runnable sections ---------------------------------------------------------

ROOT = README.parent


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks of the README section ``## heading``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    blocks = []
    pos = section.find("```python\n")
    while pos != -1:
        body = pos + len("```python\n")
        close = section.index("```", body)
        blocks.append(section[body:close])
        pos = section.find("```python\n", close + 3)
    return blocks


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL"):
        env.pop(name, None)
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=env
    )


def test_arrow_example_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    [code] = python_blocks("Arrow and Parquet")
    result = run([sys.executable, "-W", "error", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    sim = Simulator(jobs=[SimJob(job_id="bjb-arrow", total_items=20_000)])
    assert lines[0] == "20000 dictionary<values=string, indices=int32, ordered=0>"
    counts = {s: sim.count("bjb-arrow", s) for s in ("completed", "failed", "skipped", "cancelled")}
    assert lines[1] == str(sorted((s, n) for s, n in counts.items() if n))
    assert lines[2] == str(counts["failed"])
    assert (tmp_path / "failed.parquet").exists()


def section_block(marker: str) -> str:
    [code] = [b for b in python_blocks("Testing your code with the simulator") if marker in b]
    return code


def run_pytest(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``code`` as a user's test file (the plugin is named with -p: this
    environment may predate its entry point)."""
    (tmp_path / "test_example.py").write_text(code, encoding="utf-8")
    return run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-W",
            "error",
            "-p",
            "aiobatch.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "test_example.py",
        ],
        tmp_path,
    )


def test_simulator_section_pytest_example_passes(tmp_path: Path) -> None:
    result = run_pytest(section_block("def test_my_export_survives_a_flaky_page"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_simulator_section_service_test_passes(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("asgi_lifespan")
    result = run_pytest(section_block("# service test"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_simulator_section_worker_pool_test_passes(tmp_path: Path) -> None:
    result = run_pytest(section_block("# worker pool test"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_simulator_section_mock_transport_test_passes(tmp_path: Path) -> None:
    result = run_pytest(section_block("# unit test with MockTransport"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_simulator_section_asyncio_example_runs_as_written(tmp_path: Path) -> None:
    [code] = [
        b for b in python_blocks("Testing your code with the simulator") if "asyncio.run" in b
    ]
    result = run([sys.executable, "-W", "error", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["5000 True", "[('rate_limit', 3), ('reset', 2)]"]


def test_workflows_section_runs_as_written(tmp_path: Path) -> None:
    [code] = python_blocks("Workflows: wait for a job, re-run its failed items, share one budget")
    result = run([sys.executable, "-W", "error", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    failed = Simulator(
        jobs=[SimJob(job_id="bjb-done", total_items=10_000, mix={"completed": 0.9, "failed": 0.1})]
    ).count("bjb-done", "failed")
    assert lines[-4] == "completed 100%"  # the last change the callback heard
    assert lines[-3] == "final: completed"
    assert lines[-2] == f"{-(-failed // 400)} new jobs, {failed} items"
    assert lines[-1] == "True"


def test_v2_side_by_side_example_runs_as_written(tmp_path: Path) -> None:
    code, results = python_blocks("v1 and v2 side by side")
    result = run([sys.executable, "-W", "error", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["PENDING", "31 31", "COMPLETED 4 1"]
    result = run([sys.executable, "-W", "error", "-c", results], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "PENDING RUNNING COMPLETED",
        "[('failed', 4), ('missing', 1), ('no_job', 3), ('ok', 16)]",
    ]


def test_webhook_handler_example_runs_as_written(tmp_path: Path) -> None:
    [code] = python_blocks("Webhooks")
    result = run([sys.executable, "-W", "error", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["batch.success bat-123", "204", "204", "401"]


def test_observability_example_runs_as_written(tmp_path: Path) -> None:
    [code] = python_blocks("Observability: events, OpenTelemetry, logs")
    result = run([sys.executable, "-W", "error", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "300 started:0 page:0 page:100 page:200 finished:300",
        "2 2",
    ]


def test_checkpoint_pool_example_runs_as_written(tmp_path: Path) -> None:
    [code] = python_blocks("A checkpoint for worker pools")
    result = run([sys.executable, "-W", "error", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["2000 {1}"]

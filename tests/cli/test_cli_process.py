"""The real entry points in a subprocess: ``python -m aiobatch``, exit codes, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ENV_VARS, Gate, wait_for

from aiobatch.testing import Faults, SimJob, Simulator

# A shell that starts us in the background ignores SIGINT, and children inherit
# that: restore Python's handler so the Ctrl-C test means the same everywhere.
_MAIN = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from aiobatch.cli import main; sys.exit(main(sys.argv[1:]))"
)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["PYTHONWARNINGS"] = "error"
    return env


def aiobatch(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiobatch", *argv],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )


def test_python_m_aiobatch_help() -> None:
    p = aiobatch("--help")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: aiobatch")
    assert "examples:" in p.stdout
    assert p.stderr == ""


def test_version() -> None:
    p = aiobatch("--version")
    assert (p.returncode, p.stdout.split()[0]) == (0, "aiobatch")


def test_usage_error_exit_code() -> None:
    p = aiobatch("items", "list", "--status", "nope")
    assert p.returncode == 2
    assert p.stdout == ""
    assert "invalid choice" in p.stderr


def test_missing_key_exit_code() -> None:
    p = aiobatch("items", "list", "--job-id", "bjb-1")
    assert p.returncode == 2
    assert p.stderr.strip().endswith("`aiobatch demo` needs none")
    assert "Traceback" not in p.stderr


async def test_ctrl_c_leaves_a_resumable_export(tmp_path: Path) -> None:
    job = SimJob(job_id="bjb-cli-sigint", total_items=2000)
    gate = Gate(allow=3)  # the 4th page request hangs until released
    async with Simulator(jobs=[job], faults=Faults(latency_ms=0.001), sleep=gate) as sim:
        assert sim.api_key is not None
        out = tmp_path / "items.jsonl"
        state = tmp_path / "items.jsonl.aiobatch-state.json"
        argv = [
            "items",
            "export",
            "--job-id",
            job.job_id,
            "-o",
            str(out),
            "--page-size",
            "250",
            "--concurrency",
            "1",
            "--base-url",
            sim.base_url,
            "--api-key",
            sim.api_key,
        ]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _MAIN,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        await asyncio.wait_for(gate.blocked.wait(), 30)
        await wait_for(lambda: state.exists() and json.loads(state.read_text())["rows"] == 750)
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
        gate.release()
        assert proc.returncode == 130
        assert "interrupted" in stderr.decode()
        assert "--resume" in stderr.decode()
        assert sim.api_key not in stderr.decode()
        lines = out.read_text().splitlines()
        assert [json.loads(line)["item_id"] for line in lines] == sim.item_ids(job.job_id)[:750]

        sim.faults = Faults()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiobatch",
            *argv,
            "--resume",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stderr.decode()
        ids = [json.loads(line)["item_id"] for line in out.read_text().splitlines()]
        assert ids == sim.item_ids(job.job_id)
        assert not state.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_stdout_closed_early_is_quiet() -> None:
    code = (
        "import sys\n"
        "from aiobatch.cli import main\n"
        "sys.exit(main(['demo', '--items', '20000', '--latency-ms', '0', '--format', 'json']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader goes away at once, like `| head -0`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) in (0, 141)
    assert "Traceback" not in err
    assert "Exception ignored" not in err


DEMO = ["demo", "--items", "3000", "--latency-ms", "0"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_summary_into_a_closed_pipe_exits_141(fmt: str) -> None:
    """`aiobatch items summary ... | head -1`: rich must not turn it into exit 1."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiobatch", *DEMO, "--format", fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # gone before the summary is printed
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert "error" not in err
    assert "Exception ignored" not in err


def test_an_ascii_terminal_is_explained() -> None:
    env = clean_env() | {"PYTHONIOENCODING": "ascii"}
    p = subprocess.run(
        [sys.executable, "-m", "aiobatch", *DEMO],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert p.returncode == 1
    line = p.stderr.decode().strip().splitlines()[-1]
    assert line == (
        "aiobatch: error: the output cannot be encoded in the terminal's encoding (ascii): "
        "set PYTHONIOENCODING=utf-8, or write a file with `aiobatch items export -o FILE`"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell")
def test_a_closed_stdout_is_one_line() -> None:
    p = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "aiobatch", *DEMO, "-q"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert p.returncode == 1
    assert p.stderr == "aiobatch: error: cannot write to standard output: it is closed\n"

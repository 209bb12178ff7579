"""Exit codes and one-line error messages; the API key never shows."""

from __future__ import annotations

import asyncio
import io
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import clear_env, cli, conn

from aiobatch.cli import run
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

JOB = "bjb-cli-errors"
SECRET = "llx-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[SimJob(job_id=JOB, total_items=300)], api_key=SECRET) as s:
        yield s


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aiobatch: error: ")
    return lines[0].removeprefix("aiobatch: error: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["items", "list", "--job-id", "bjb-nope"],
        ["items", "list", "--job-id", "bjb-nope", "--limit", "5"],
        ["items", "list", "--job-id", "bjb-nope", "--status", "failed"],
        ["items", "summary", "--job-id", "bjb-nope"],
        ["jobs", "status", "--job-id", "bjb-nope"],
        ["jobs", "watch", "--job-id", "bjb-nope"],
        ["jobs", "cancel", "--job-id", "bjb-nope"],
    ],
)
async def test_404_names_the_job(sim: Simulator, argv: list[str]) -> None:
    r = await cli(*argv, sim=sim)
    assert r.code == 1
    assert one_error_line(r.err) == "job bjb-nope not found"
    assert r.out == ""


async def test_401_points_at_the_key(sim: Simulator) -> None:
    r = await cli(
        "items", "list", "--job-id", JOB, "--base-url", sim.base_url, "--api-key", "wrong-key"
    )
    assert r.code == 1
    assert one_error_line(r.err) == "authentication failed: check --api-key"


async def test_401_with_the_key_from_the_environment(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_PARSE_API_KEY", "wrong-key")
    monkeypatch.setenv("LLAMA_CLOUD_BASE_URL", sim.base_url)
    r = await cli("items", "list", "--job-id", JOB)
    assert r.code == 1
    assert one_error_line(r.err) == "authentication failed: check LLAMA_PARSE_API_KEY"


async def test_key_and_base_url_from_the_environment(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_API_KEY", SECRET)
    monkeypatch.setenv("LLAMA_CLOUD_BASE_URL", sim.base_url)
    r = await cli("items", "list", "--job-id", JOB)
    assert r.code == 0
    assert r.ids() == sim.item_ids(JOB)


async def test_422_reports_the_rejected_parameter(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", JOB, "--limit", "5000", sim=sim)
    assert r.code == 2  # a parameter of the command line: a usage error
    line = one_error_line(r.err)
    assert line.startswith("the API rejected the request: ")
    assert "limit" in line


async def test_5xx_after_retries(sim: Simulator) -> None:
    sim.faults = Faults(server_error=Trigger.always(on="*"), error_status=502)
    r = await cli("jobs", "status", "--job-id", JOB, "--max-retries", "0", sim=sim)
    assert r.code == 1
    assert one_error_line(r.err).startswith("the API failed with 502")


async def test_429_after_retries(sim: Simulator) -> None:
    sim.faults = Faults(rate_limit=Trigger.always(), retry_after=None)
    r = await cli("items", "list", "--job-id", JOB, "--max-retries", "0", sim=sim)
    assert r.code == 1
    assert "rate limited" in one_error_line(r.err)


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    r = await cli(
        "jobs",
        "list",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--api-key",
        "k",
        "--max-retries",
        "0",
    )
    assert r.code == 1
    assert one_error_line(r.err).startswith("cannot reach the API")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "required: COMMAND"),
        (["items"], "required: ACTION"),
        (["items", "list"], "--job-id"),
        (["items", "list", "--job-id", "j", "--status", "broken"], "invalid choice: 'broken'"),
        (["items", "list", "--job-id", "j", "--limit", "0"], "must be >= 1"),
        (["items", "list", "--job-id", "j", "--offset", "-1"], "must be >= 0"),
        (["items", "list", "--job-id", "j", "--page-size", "x"], "expected an integer"),
        (["items", "export", "--job-id", "j"], "-o/--output"),
        (["items", "export", "--job-id", "j", "-o", "f", "--resume", "--force"], "not allowed"),
        (["jobs", "list", "--status", "finished"], "invalid choice"),
        (["jobs", "watch", "--job-id", "j", "--interval", "0"], "must be > 0"),
        (["frobnicate"], "invalid choice"),
    ],
)
async def test_usage_errors_exit_2(argv: list[str], needle: str) -> None:
    r = await cli(*argv)
    assert r.code == 2
    assert needle in r.err
    assert r.out == ""


async def test_no_api_key_is_a_usage_error_with_a_hint() -> None:
    r = await cli("items", "list", "--job-id", JOB)
    assert r.code == 2
    line = one_error_line(r.err)
    assert "no API key" in line
    assert "LLAMA_CLOUD_API_KEY" in line
    assert "--api-key" in line


async def test_invalid_job_id_is_a_usage_error(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", "..", sim=sim)
    assert r.code == 2
    assert one_error_line(r.err).startswith("invalid argument: job_id")


async def test_bad_base_url_is_a_usage_error() -> None:
    r = await cli("jobs", "list", "--api-key", "k", "--base-url", "ftp://example.com")
    assert r.code == 2
    assert one_error_line(r.err).startswith("invalid configuration: base_url")


async def test_debug_shows_a_traceback_but_never_the_key(sim: Simulator) -> None:
    r = await cli("items", "list", "--job-id", "bjb-nope", "--debug", sim=sim)
    assert r.code == 1
    assert "Traceback" in r.err
    assert r.err.rstrip().endswith("aiobatch: error: job bjb-nope not found")
    assert SECRET not in r.err


async def test_key_is_redacted_from_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_API_KEY", SECRET)
    r = await cli("items", "list", "--job-id", "j", SECRET)  # a key pasted without --api-key
    assert r.code == 2
    assert SECRET not in r.err
    assert "***" in r.err
    r = await cli("items", "list", "--job-id", "j", "--api-key", "s3cr3t-value", "stray")
    assert r.code == 2
    assert "s3cr3t-value" not in r.err


async def test_broken_pipe_exits_quietly(sim: Simulator) -> None:
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError

    err = io.StringIO()
    code = await run(
        ["items", "list", "--job-id", JOB, "--base-url", sim.base_url, "--api-key", SECRET],
        stdout=Closed(),
        stderr=err,
    )
    assert (code, err.getvalue()) == (141, "")


async def test_help_of_every_command_has_examples() -> None:
    commands = [
        [],
        ["items"],
        ["items", "list"],
        ["items", "summary"],
        ["items", "export"],
        ["items", "results"],
        ["jobs"],
        ["jobs", "list"],
        ["jobs", "status"],
        ["jobs", "cancel"],
        ["jobs", "watch"],
        ["demo"],
        ["sim"],
    ]
    for argv in commands:
        r = await cli(*argv, "--help")
        assert r.code == 0, argv
        assert "examples:" in r.out, argv
        assert r.out.startswith("usage: aiobatch"), argv


# --- absurd numbers are usage errors ------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-1", "0", "1e400"])
async def test_timeout_must_be_a_finite_positive_number(value: str) -> None:
    r = await asyncio.wait_for(cli("jobs", "list", "--api-key", "key-1", f"--timeout={value}"), 10)
    assert r.code == 2
    assert r.err.splitlines()[-1].startswith("aiobatch jobs list: error: argument --timeout: must")
    assert r.out == ""


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["items", "list", "--job-id", "j", "--concurrency", str(10**30)], "must be <= 1,024"),
        (["items", "list", "--job-id", "j", "--concurrency", "1025"], "must be <= 1,024"),
        (["items", "summary", "--job-id", "j", "--page-size", "100001"], "must be <= 100,000"),
        (["items", "export", "--job-id", "j", "-o", "x", "--page-size", "9" * 5000], "integer"),
        (["demo", "--concurrency", str(10**30)], "must be <= 1,024"),
        (["demo", "--latency-ms", "inf"], "must be a finite number"),
    ],
)
async def test_huge_integers_are_usage_errors(argv: list[str], needle: str) -> None:
    r = await asyncio.wait_for(cli(*argv, "--api-key", "key-1"), 10)
    assert r.code == 2
    assert needle in r.err
    assert len(r.err.splitlines()[-1]) < 200  # a 5000-digit argument is not echoed
    assert r.out == ""


async def test_the_bounds_themselves_are_accepted(sim: Simulator) -> None:
    r = await cli(
        "items", "list", "--job-id", JOB, "--concurrency", "1024", "--page-size", "100", sim=sim
    )
    assert r.code == 0, r.err
    assert r.ids() == sim.item_ids(JOB)


# --- how output fails -----------------------------------------------------------


class BrokenPipe(io.StringIO):
    """stdout of `aiobatch ... | head -0`."""

    def write(self, s: str) -> int:
        raise BrokenPipeError


@pytest.mark.parametrize(
    "argv",
    [
        ["items", "list", "--job-id", JOB],
        ["items", "list", "--job-id", JOB, "--format", "table"],
        ["items", "summary", "--job-id", JOB],
        ["items", "summary", "--job-id", JOB, "--format", "json"],
        ["jobs", "status", "--job-id", JOB],
        ["jobs", "list"],
        ["jobs", "list", "--format", "csv"],
        ["jobs", "watch", "--job-id", JOB],
    ],
)
async def test_every_command_exits_141_on_a_broken_pipe(sim: Simulator, argv: list[str]) -> None:
    err = io.StringIO()
    code = await run([*argv, *conn(sim)], stdout=BrokenPipe(), stderr=err)
    assert code == 141
    assert "aiobatch: error" not in err.getvalue()  # (watch logs the job's progress there)


async def test_the_demo_table_exits_141_on_a_broken_pipe() -> None:
    err = io.StringIO()
    code = await run(
        ["demo", "--items", "500", "--latency-ms", "0"], stdout=BrokenPipe(), stderr=err
    )
    assert code == 141
    assert "aiobatch: error" not in err.getvalue()


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
async def test_an_unencodable_output_names_the_encoding(sim: Simulator, fmt: str) -> None:
    """PYTHONIOENCODING=ascii: the simulator's error messages are not ASCII."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    err = io.StringIO()
    cmd = ["items", "list", "--format", fmt] if fmt == "jsonl" else ["items", "summary"]
    code = await run([*cmd, "--job-id", JOB, *conn(sim)], stdout=out, stderr=err)
    assert code == 1
    line = one_error_line(err.getvalue())
    assert line.startswith("the output cannot be encoded in the terminal's encoding (ascii)")
    assert "PYTHONIOENCODING=utf-8" in line
    assert "-o FILE" in line


async def test_a_closed_stdout_is_one_line(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # what Python sets for `aiobatch ... >&-`
    err = io.StringIO()
    code = await run(["items", "summary", "--job-id", JOB, *conn(sim)], stderr=err)
    assert code == 1
    assert one_error_line(err.getvalue()) == "cannot write to standard output: it is closed"
    # a command that writes no data to stdout does not mind
    out = tmp_path / "items.jsonl"
    err = io.StringIO()
    code = await run(["items", "export", "--job-id", JOB, "-o", str(out), *conn(sim)], stderr=err)
    assert code == 0, err.getvalue()

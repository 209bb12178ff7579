"""The CLI reads the library's error classes and typed attributes, never its
message text: reworded messages leave every report unchanged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import clear_env, cli

from aiobatch import BatchClient, ConfigurationError, DriftError
from aiobatch._errors import MissingAPIKeyError
from aiobatch.cli import _context
from aiobatch.cli._export import STATE_SUFFIX
from aiobatch.testing import Faults, SimJob, Simulator

JOB = "bjb-cli-typed"
NO_KEY = (
    "no API key: pass --api-key or set LLAMA_CLOUD_API_KEY (or LLAMA_PARSE_API_KEY); "
    "`aiobatch demo` needs none"
)
DRIFT_HINT = (
    "; items may be skipped or repeated. Re-run once the job has finished, "
    "or with --filter-mode client"
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("aiobatch: error: ")]
    assert len(lines) == 1, err
    return lines[0].removeprefix("aiobatch: error: ")


def reword(monkeypatch: pytest.MonkeyPatch, cls: type[Exception], text: str) -> None:
    """Every message of ``cls`` (and its subclasses) now reads ``text``."""
    monkeypatch.setattr(cls, "__str__", lambda self: text)


# --- no API key ----------------------------------------------------------------------


def test_the_library_raises_a_missing_key_error() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        BatchClient()
    assert isinstance(info.value, ConfigurationError)


async def test_no_key_is_recognised_by_its_class(monkeypatch: pytest.MonkeyPatch) -> None:
    reword(monkeypatch, MissingAPIKeyError, "credentials are absent")
    r = await cli("items", "list", "--job-id", JOB)
    assert (r.code, error_line(r.err)) == (2, NO_KEY)


async def test_a_message_mentioning_no_key_is_not_a_missing_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> BatchClient:
        raise ConfigurationError("no API key: the proxy setting is broken")

    monkeypatch.setattr(_context, "BatchClient", refuse)
    r = await cli("jobs", "list", "--api-key", "key-0123456789")
    assert r.code == 2
    assert error_line(r.err) == "invalid configuration: no API key: the proxy setting is broken"


# --- drift -----------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[SimJob(job_id=JOB, total_items=3000)]) as s:
        s.faults = Faults(unstable_ties=1000)  # the order of tied items changes per request
        yield s


def drift_seen(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The drift the scan reported (its warnings), in order."""
    return [
        str(r.args[0]) if isinstance(r.args, tuple) else ""
        for r in caplog.records
        if r.msg == "aiobatch scan drift: %s"
    ]


@pytest.mark.parametrize("reworded", [False, True])
async def test_drift_is_recognised_by_its_class(
    sim: Simulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    reworded: bool,
) -> None:
    caplog.set_level(logging.WARNING, logger="aiobatch")
    if reworded:
        reword(monkeypatch, DriftError, "the listing moved")
    r = await cli("items", "list", "--job-id", JOB, "--page-size", "200", sim=sim)
    assert r.code == 1
    seen = drift_seen(caplog)
    assert len(seen) == 1
    assert "not stable" in seen[0]
    assert error_line(r.err) == f"the listing changed during the scan ({seen[0]}){DRIFT_HINT}"


async def test_drift_during_an_export_is_reported_and_resumable(
    sim: Simulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.WARNING, logger="aiobatch")
    reword(monkeypatch, DriftError, "the listing moved")
    out = tmp_path / "items.jsonl"
    argv = ["items", "export", "--job-id", JOB, "-o", str(out), "--page-size", "200"]
    r = await cli(*argv, sim=sim)
    assert r.code == 1
    (seen,) = drift_seen(caplog)
    assert error_line(r.err) == f"the listing changed during the scan ({seen}){DRIFT_HINT}"
    assert out.with_name(out.name + STATE_SUFFIX).exists()  # drift is transient

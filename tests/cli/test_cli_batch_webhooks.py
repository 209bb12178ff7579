"""``aiobatch batches create --webhook-*``: one typed webhook configuration, checked
before any request, sent as the API's ``webhook_configurations``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cli_support import clear_env, cli

from aiobatch.testing import Simulator

CREATE = [
    "batches",
    "create",
    "--job-type",
    "parse_v2",
    "--configuration-id",
    "cfg-1",
    "--source-directory-id",
    "dir-1",
]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as s:
        yield s


async def test_webhook_flags_become_one_configuration(sim: Simulator) -> None:
    r = await cli(
        *CREATE,
        "--webhook-url",
        "http://127.0.0.1:9/hook",
        "--webhook-event",
        "batch.success",
        "--webhook-event",
        "batch.error",
        "--webhook-header",
        "X-Team: data",
        "--webhook-signing-secret",
        "whsec-cli",
        "--webhook-output-format",
        "json",
        sim=sim,
    )
    assert r.code == 0, r.err
    (state,) = sim.batches.hooked()
    assert state.hooks == [
        {
            "webhook_url": "http://127.0.0.1:9/hook",
            "webhook_events": ["batch.success", "batch.error"],
            "webhook_headers": {"X-Team": "data"},
            "webhook_signing_secret": "whsec-cli",
            "webhook_output_format": "json",
        }
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--webhook-url", "ftp://x"], "http(s) URL"),
        (["--webhook-header", "no colon"], "expected 'Name: value'"),
        (["--webhook-url", "https://x", "--webhook-header", "X-A: 1\x07"], "control characters"),
    ],
)
async def test_bad_webhook_flags_are_usage_errors_before_any_request(
    sim: Simulator, flags: list[str], message: str
) -> None:
    r = await cli(*CREATE, *flags, sim=sim)
    assert r.code == 2
    assert message in r.err
    assert len(sim.batches) == 0

"""``aiobatch batches create --webhook-*``: one typed webhook configuration, checked
before any request, sent as the API's ``webhook_configurations``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_support import clear_env, cli

from aiobatch.cli._webhook_flags import SECRET_ENV_VAR
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


# --- the signing secret kept out of the process list ------------------------------------

HOOK = ["--webhook-url", "http://127.0.0.1:9/hook"]


def _sent_secret(sim: Simulator) -> object:
    (state,) = sim.batches.hooked()
    return state.hooks[0].get("webhook_signing_secret")


async def test_signing_secret_from_a_file(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("  whsec-from-file\n")
    r = await cli(*CREATE, *HOOK, "--webhook-signing-secret-file", str(path), sim=sim)
    assert r.code == 0, r.err
    assert _sent_secret(sim) == "whsec-from-file"


async def test_signing_secret_from_the_environment(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV_VAR, "whsec-from-env")
    r = await cli(*CREATE, sim=sim)  # the variable alone asks for no webhook
    assert r.code == 0, r.err
    assert sim.batches.hooked() == []
    r = await cli(*CREATE, *HOOK, sim=sim)
    assert r.code == 0, r.err
    assert _sent_secret(sim) == "whsec-from-env"
    r = await cli(*CREATE, *HOOK, "--webhook-signing-secret", "whsec-flag", sim=sim)
    assert r.code == 0, r.err
    secrets = [state.hooks[0].get("webhook_signing_secret") for state in sim.batches.hooked()]
    assert secrets == ["whsec-from-env", "whsec-flag"]  # the flag wins


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        (b"\n  \n", "one line"),
        (b"whsec-a\nwhsec-b\n", "one line"),
        (b"\xffwhsec", "not UTF-8"),
        (b"x" * 5000, "over 4096 bytes"),
    ],
)
async def test_a_bad_secret_file_is_a_usage_error_that_never_quotes_it(
    sim: Simulator, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_bytes(content)
    r = await cli(*CREATE, *HOOK, "--webhook-signing-secret-file", str(path), sim=sim)
    assert r.code == 2
    assert message in r.err
    assert "whsec" not in r.err
    assert "xxxx" not in r.err
    assert len(sim.batches) == 0


async def test_flag_and_file_together_are_refused(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("whsec-f")
    args = ["--webhook-signing-secret", "whsec-x", "--webhook-signing-secret-file", str(path)]
    r = await cli(*CREATE, *HOOK, *args, sim=sim)
    assert r.code == 2
    assert "not allowed with" in r.err
    assert len(sim.batches) == 0

"""Conformance of the v2 Batches API with the official SDK at 2.19.0.

2.19.0 cannot share the dev virtualenv with the 2.13.0 of the ``bench`` extra
(which has no ``client.batches``), so this test builds a second virtualenv once,
``.venv-sdk-2.19/`` at the repository root (gitignored; delete it to rebuild),
and runs ``_sdk_v2_probe.py`` in it against a ``SimulatorProcess``.  The probe
only talks HTTP: it never imports aiobatch.  Without PyPI (and no cached
virtualenv) the test is skipped, not failed.  About 13 s the first time (the
install), about 1.5 s once cached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aiobatch.testing import SimulatorProcess

pytestmark = [pytest.mark.sdk, pytest.mark.slow]

SDK = "llama-cloud==2.19.0"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-sdk-2.19"
STAMP = VENV / ".installed"
PROBE = Path(__file__).with_name("_sdk_v2_probe.py")
BATCHES = 23  # three pages of 10, the last one short
PAGE_SIZE = 10


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _sdk_venv() -> Path:
    """The cached virtualenv's python, built when missing; skips without PyPI."""
    if STAMP.exists() and _python(VENV).exists():
        return _python(VENV)
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "llama-cloud"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
        check=False,
    )
    if probe.returncode != 0 or "2.19.0" not in probe.stdout:
        pytest.skip(
            f"cannot build {VENV.name}: PyPI unreachable or {SDK} not listed "
            f"(pip index versions said: {(probe.stderr or probe.stdout).strip()[-300:]!r})"
        )
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
    install = subprocess.run(
        [str(_python(VENV)), "-m", "pip", "install", "--quiet", SDK],
        capture_output=True,
        text=True,
        timeout=600,
        env=_clean_env(),
        check=False,
    )
    if install.returncode != 0:  # PyPI answered a moment ago: a real failure
        shutil.rmtree(VENV, ignore_errors=True)
        pytest.fail(f"pip install {SDK} failed:\n{install.stderr[-2000:]}")
    STAMP.write_text(SDK + "\n")
    return _python(VENV)


def test_sdk_2_19_lists_gets_and_validates_v2_batches(tmp_path: Path) -> None:
    python = _sdk_venv()
    with SimulatorProcess(items=10, args=["--batches", str(BATCHES)]) as proc:
        run = subprocess.run(
            [str(python), str(PROBE), proc.base_url, proc.api_key, str(PAGE_SIZE)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,  # nothing of this repository on the probe's path
            env=_clean_env(),
            check=False,
        )
    assert run.returncode == 0, run.stderr[-4000:]
    seen = json.loads(run.stdout)
    assert seen["sdk_version"] == "2.19.0"
    # The SDK's paginator got every batch, newest first, none twice.
    assert seen["listed"] == [f"bat-sim-{k:04d}" for k in range(BATCHES, 0, -1)]
    assert "COMPLETED" in seen["statuses"]
    assert seen["results"] == 20  # every file of the finished batch
    assert seen["created_status"] == "PENDING"
    assert seen["cancelled_status"] == "CANCELLED"
    # Every listed batch, and its expanded get, passed strict model_validate.
    assert seen["validated"] == BATCHES + 1  # the SDK's own create is listed too

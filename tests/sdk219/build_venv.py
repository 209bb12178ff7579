"""The virtualenv the official SDK 2.19.0 conformance tests run in, built on demand.

``llama-cloud==2.19.0`` cannot share the dev virtualenv with the 2.13.0 of the
``bench`` extra (2.14.0 removed ``client.beta.batch``, which the 2.13.0 tests
drive), so it lives outside the clone, in ``~/.cache/aiobatch/sdk-2.19.0``
(``AIOBATCH_SDK219_VENV`` moves it), shared by every checkout: it holds the SDK,
pytest and aiobatch's own dependencies (installed from this checkout), and
``make test-sdk`` runs the tests with this checkout first on ``PYTHONPATH``, so
the code under test is always the checkout's, never a copy installed earlier.

    python tests/sdk219/build_venv.py     # builds when missing or stale; prints its python

A lock file keeps two checkouts from building it at once; a stamp holding the
requirements (and aiobatch's dependency list) rebuilds it when either changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = "llama-cloud==2.19.0"
REQUIREMENTS = (SDK, "pytest>=8", "pytest-asyncio>=1.0", "aioresponses==0.7.9")
DEFAULT = Path.home() / ".cache" / "aiobatch" / "sdk-2.19.0"


def venv_dir() -> Path:
    return Path(os.environ.get("AIOBATCH_SDK219_VENV") or DEFAULT)


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def stamp_text() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    text = "\n".join((*REQUIREMENTS, *deps))
    return hashlib.sha256(text.encode()).hexdigest() + "\n"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _build(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # aiobatch from this checkout brings its dependencies at the versions it declares.
    cmd = [str(python_of(venv)), "-m", "pip", "install", "--quiet", *REQUIREMENTS, str(ROOT)]
    done = subprocess.run(cmd, env=_clean_env(), timeout=900, check=False)
    if done.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise SystemExit(f"cannot build {venv}: pip install {SDK} ... failed")


def ensure() -> Path:
    """The virtualenv's python, built first when missing or stale."""
    venv = venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    stamp = venv / ".aiobatch-stamp"
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text() == stamp_text()):
            print(f"building {venv} ({SDK}) ...", file=sys.stderr)
            _build(venv)
            stamp.write_text(stamp_text())
    return python_of(venv)


if __name__ == "__main__":
    print(ensure())

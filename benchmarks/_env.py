"""What the numbers were measured on: interpreter, packages, CPUs, git revision."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "ROOT", "environment", "source_fingerprint"]

ROOT = Path(__file__).resolve().parents[1]

PACKAGES = (
    "aiobatch",
    "aiohttp",
    "msgspec",
    "anyio",
    "llama-cloud",
    "httpx",
    "httpx-aiohttp",
    "pydantic",
    "pydantic-core",
    "orjson",
    "matplotlib",
    "psutil",
)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def source_fingerprint() -> str:
    """A hash of the aiobatch sources as they are on disk now.  Compared at the
    start and the end of a run: the tree may be edited while a long run goes on,
    and later imports (subprocesses) would then measure other code."""
    h = hashlib.blake2b(digest_size=8)
    for path in sorted((ROOT / "aiobatch").rglob("*.py")):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def environment() -> dict[str, Any]:
    """A JSON-ready description of this machine and checkout."""
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    library = _git("status", "--porcelain", "--", "aiobatch")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": {name: _version(name) for name in PACKAGES},
        "git_sha": sha,
        "git_dirty": bool(status) if status is not None else None,
        # Uncommitted changes to the library itself (not to benchmarks/ or docs).
        "aiobatch_dirty": bool(library) if library is not None else None,
        "aiobatch_source": source_fingerprint(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

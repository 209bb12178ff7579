"""Issue 20 case 3 through the CLI: an export whose listing is not what its server
claims never exits 0 with a short (or empty) file.  Against ``edge_server``,
written apart from the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_support import clear_env, cli
from edge_server import JOB, OffsetServer


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


async def export(url: str, out: Path) -> tuple[int, str]:
    args = ["items", "export", "--job-id", JOB, "-o", str(out), "--page-size", "100"]
    r = await cli(*args, "--base-url", url, "--api-key", "llx-edge-secret", "--max-retries", "0")
    return r.code, r.err


async def test_a_200_error_body_at_the_start_is_a_failed_export(tmp_path: Path) -> None:
    def detail(offset: int, limit: int, asked: int) -> Any:
        return {"detail": "upstream timed out"} if offset == 0 else None

    server = OffsetServer(1_000, override=detail)
    async with server.run() as url:
        code, err = await export(url, tmp_path / "items.jsonl")
    assert code != 0
    assert "error detail and no items" in err
    assert "llx-edge-secret" not in err


async def test_a_listing_that_shrinks_mid_export_is_a_failed_export(tmp_path: Path) -> None:
    server = OffsetServer(1_000)

    def shrink(offset: int, limit: int) -> None:
        if offset > 0 and len(server.ids) == 1_000:
            del server.ids[:10]

    server.on_request = shrink
    async with server.run() as url:
        code, err = await export(url, tmp_path / "items.jsonl")
    assert code != 0
    assert "total_size moved from 1000 to 990" in err

"""``aiobatch demo`` end to end (small), ``aiobatch sim``, and the output fallbacks."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from cli_support import TtyStringIO, clear_env, cli

from aiobatch.cli import _output, run


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


async def test_demo_json() -> None:
    r = await cli("demo", "--items", "2000", "--latency-ms", "0", "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["total_items"] == 2000
    assert sum(s["count"] for s in doc["statuses"].values()) == 2000
    assert doc["statuses"]["failed"]["count"] == sum(e["count"] for e in doc["errors"])
    assert doc["items_per_second"] > 0
    assert doc["requests"] >= 2


async def test_demo_without_total_size_ends_with_every_item() -> None:
    # Whether the API sends total_size is not published: the demo works without it.
    args = ("demo", "--items", "2500", "--latency-ms", "0", "--format", "json")
    r = await cli(*args, "--no-total-size", "--page-size", "100")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["total_items"] == 2500
    assert sum(s["count"] for s in doc["statuses"].values()) == 2500
    assert "no total_size" in r.err
    with_total = json.loads((await cli(*args, "--page-size", "100")).out)
    assert doc["statuses"] == with_total["statuses"]


async def test_demo_table_with_progress_bar() -> None:
    err = TtyStringIO()
    r = await cli("demo", "--items", "2000", "--latency-ms", "1", "--page-size", "100", stderr=err)
    assert r.code == 0, r.err
    assert "Items of job bjb-demo-0001" in r.out
    assert "Top errors" in r.out
    assert "items/s" in r.out.splitlines()[-1]
    assert "2,000 items" in r.out.splitlines()[-1]
    assert "streaming" in r.err  # the bar's label, on stderr only


async def test_demo_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_output, "load_rich", lambda: None)
    err = TtyStringIO()
    r = await cli("demo", "--items", "1500", "--latency-ms", "0", "--page-size", "100", stderr=err)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "Items of job bjb-demo-0001"
    assert lines[1].split() == ["status", "items", "share"]
    assert "1,500/1,500 items (100%)" in r.err  # the plain progress line


async def test_demo_quiet_prints_only_the_summary() -> None:
    r = await cli("demo", "--items", "500", "--latency-ms", "0", "-q")
    assert r.code == 0
    assert r.err == ""
    assert "items/s" in r.out


async def test_sim_command_serves_until_cancelled() -> None:
    out = io.StringIO()
    task = asyncio.create_task(
        run(["sim", "--port", "0", "--items", "50", "--api-key", "k"], stdout=out)
    )
    for _ in range(2000):
        if "base_url:" in out.getvalue():
            break
        await asyncio.sleep(0.001)
    banner = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line)
    base_url = banner["base_url"]
    r = await cli(
        "items", "list", "--job-id", "bjb-sim-0001", "--base-url", base_url, "--api-key", "k"
    )
    assert r.code == 0
    assert len(r.lines()) == 50
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_sim_port_in_use_is_reported() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = await cli("sim", "--port", str(port))
    assert r.code == 1
    assert "cannot start the simulator" in r.err

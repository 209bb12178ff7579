"""A download streams each result: ``--format jsonl`` into its line (a result
read through a presigned URL, spooled, is never read whole), ``files`` into its
file; a line break in the JSON as stored never splits a line, and a failure
part-way leaves whole lines only (issue 22 case 2)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cli_support import clear_env, cli

from aiobatch._results import ItemResult, ResultContent
from aiobatch.cli import _result_files
from aiobatch.cli._result_files import JsonlResultsWriter
from aiobatch.models import BatchItem, ItemStatus
from aiobatch.testing import Faults, SimBatch, SimClock, Simulator, Trigger

T0 = 1_800_000_000.0
TEXT = 'héllo ✓ ファイル \u2028 "quoted"\n\ttab 𝄞 end' * 3


@pytest.fixture(autouse=True)
def _never_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a spooled result whole is what the writer must not do."""
    real = ResultContent.data

    def data(self: ResultContent) -> bytes:
        if self.spooled:
            raise AssertionError("a spooled result was read whole")
        return real.fget(self)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(ResultContent, "data", property(data))
    monkeypatch.setattr(_result_files, "_PIECE", 7, raising=False)  # cut characters
    clear_env(monkeypatch)


def spooled(kind: str, data: bytes) -> ResultContent:
    spool = io.BytesIO(data)
    return ResultContent(kind, spool=spool, size=len(data))


def result(content: ResultContent | None, n: int = 0) -> ItemResult:
    item = BatchItem(item_id=f"it-{n}", item_name=f"doc {n}.pdf", status=ItemStatus("COMPLETED"))
    return ItemResult(item=item, content=content, error=None, next_offset=n + 1)


def written(tmp_path: Path, *records: ItemResult) -> list[dict[str, object]]:
    path = tmp_path / "out.jsonl"
    w = JsonlResultsWriter(path, None)
    try:
        w.write(list(records))
    finally:
        w.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert w.bytes == path.stat().st_size
    return [json.loads(line) for line in lines[:-1]]


def test_a_spooled_text_result_is_streamed_and_equal(tmp_path: Path) -> None:
    data = TEXT.encode()
    (row,) = written(tmp_path, result(spooled("markdown", data)))
    assert row["result"] == TEXT
    assert row["bytes"] == len(data)
    assert row["item_id"] == "it-0"


def test_pretty_printed_json_stays_one_line(tmp_path: Path) -> None:
    pages = {"pages": [{"page": 1, "md": "a\nb", "items": [1, 2]}], "k": "\u00e9"}
    pretty = json.dumps(pages, indent=2, ensure_ascii=False).replace("\n", "\r\n").encode()
    rows = written(tmp_path, result(spooled("json", pretty)), result(None, 1))
    assert rows[0]["result"] == pages
    assert rows[1]["result"] is None
    assert rows[1]["item_id"] == "it-1"


def test_an_empty_json_result_is_null_not_a_broken_line(tmp_path: Path) -> None:
    (row,) = written(tmp_path, result(spooled("json", b"  ")))
    assert row["result"] is None


class _Failing(io.BytesIO):
    def read(self, size: int | None = -1, /) -> bytes:
        if self.tell() >= 14:
            raise OSError(5, "Input/output error")
        return super().read(size)


def test_a_failure_part_way_leaves_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    w = JsonlResultsWriter(path, None)
    try:
        w.write([result(spooled("text", b"first"))])
        before = path.read_bytes()
        broken = ResultContent("text", spool=_Failing(TEXT.encode()), size=99)
        with pytest.raises(Exception, match="Input/output error"):
            w.write([result(broken, 1)])
    finally:
        w.close()
    assert path.read_bytes() == before
    assert json.loads(before)["result"] == "first"


def _inline(rows: Iterator[dict[str, object]]) -> dict[object, object]:
    return {r["item_id"]: r["result"] for r in rows}


@pytest.mark.parametrize("kind", ["markdown", "json"])
async def test_a_batch_download_from_storage_equals_the_inline_one(
    tmp_path: Path, kind: str
) -> None:
    async with Simulator(clock=SimClock.frozen_at(T0)) as sim:
        sim.batches.add(SimBatch(batch_id="bat-big", files=6, created_at=T0 - 600))
        got = []
        for n, faults in enumerate([None, Faults(inline_result_limit=64)]):
            sim.faults = faults or Faults()
            out = tmp_path / f"{n}.jsonl"
            argv = ["batches", "download", "--batch-id", "bat-big", "--format", "jsonl"]
            res = await cli(*argv, "--result", kind, "-o", str(out), sim=sim)
            assert res.code in (0, 1), res.err
            got.append(_inline(json.loads(line) for line in out.read_text().splitlines()))
        assert sim.storage_requests  # the second run read the stored copies
    assert got[0] == got[1]
    assert any(v for v in got[1].values())


async def test_files_from_storage_are_written_in_pieces_too(tmp_path: Path) -> None:
    async with Simulator(clock=SimClock.frozen_at(T0)) as sim:
        sim.batches.add(SimBatch(batch_id="bat-big", files=6, created_at=T0 - 600))
        trees = []
        for n, faults in enumerate([Faults(), Faults(inline_result_limit=64)]):
            sim.faults = faults
            out = tmp_path / f"d{n}"
            argv = ["batches", "download", "--batch-id", "bat-big", "-o", str(out)]
            res = await cli(*argv, sim=sim)
            assert res.code in (0, 1), res.err
            trees.append({p.name: p.read_bytes() for p in out.iterdir()})
        assert sim.storage_requests
    assert trees[0] == trees[1]
    assert len(trees[1]) > 1


async def test_only_failed_rewrites_a_jsonl_file_without_holding_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobatch.cli import _refetch

    real = msgspec.json.decode
    decoded: list[int] = []

    def decode(data: bytes, **kw: Any) -> Any:
        if kw.get("type") is _refetch._Line:
            decoded.append(len(data))
        return real(data, **kw)

    out = tmp_path / "out.jsonl"
    argv = ["batches", "download", "--batch-id", "bat-big", "--format", "jsonl", "-o", str(out)]
    async with Simulator(clock=SimClock.frozen_at(T0)) as sim:
        sim.batches.add(SimBatch(batch_id="bat-big", files=12, created_at=T0 - 600))
        sim.faults = Faults(server_error=Trigger(every=3, on="parse_v2_job"), error_status=503)
        first = await cli(*argv, "--max-retries", "0", sim=sim)
        assert first.code == 1, first.err
        before = out.read_bytes().splitlines(keepends=True)
        sim.faults = Faults()
        monkeypatch.setattr(_refetch, "_HEAD", 300, raising=False)  # results are longer
        monkeypatch.setattr(msgspec.json, "decode", decode)
        again = await cli(*argv, "--only-failed", sim=sim)
        assert again.code in (0, 1), again.err
    after = out.read_bytes().splitlines(keepends=True)
    assert len(after) == len(before)
    assert decoded
    assert max(len(line) for line in before) > 1000
    assert max(decoded) <= 301  # heads only, never a whole long line
    for old, new in zip(before, after, strict=True):
        o, n = json.loads(old), json.loads(new)
        assert o["item_id"] == n["item_id"]
        if o["status"] == "ok":
            assert new == old  # copied byte for byte
        else:
            assert n["error_kind"] != "unavailable"
    assert any(json.loads(line)["status"] == "failed" for line in before)

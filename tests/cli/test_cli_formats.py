"""One registry of output formats: every ``--format`` comes from it."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Iterator
from typing import get_args, get_type_hints

import pytest
from cli_support import clear_env, cli

from aiobatch.cli import build_parser
from aiobatch.cli._export import _StateFile
from aiobatch.cli._formats import (
    BATCH,
    BATCH_PAGE,
    BATCHES,
    CANCEL,
    DEMO,
    DIRECTORY_FILES,
    DOWNLOADS,
    FILE_PAGE,
    FORMATS,
    ITEM_PAGE,
    ITEMS,
    JOB_PAGE,
    JOB_STATUS,
    JOBS,
    RESULTS,
    RETRY,
    SUMMARY,
    Records,
    Target,
    infer_format,
    names,
)
from aiobatch.testing import SimJob, Simulator

#: command -> (the records it writes, where, its --format choices as shipped)
COMMANDS: dict[str, tuple[tuple[Records, ...], Target, list[str]]] = {
    "items list": ((ITEMS, ITEM_PAGE), "stdout", ["jsonl", "json", "csv", "table"]),
    "items summary": ((SUMMARY,), "stdout", ["table", "json"]),
    "items export": ((ITEMS,), "file", ["jsonl", "csv", "parquet"]),
    "items results": ((RESULTS,), "stdout", ["json", "jsonl", "table"]),
    "items download": ((DOWNLOADS,), "file", ["files", "jsonl"]),
    "jobs list": ((JOBS, JOB_PAGE), "stdout", ["table", "jsonl", "json", "csv"]),
    "jobs status": ((JOB_STATUS,), "stdout", ["table", "json"]),
    "jobs cancel": ((CANCEL,), "stdout", ["table", "json"]),
    "jobs watch": ((JOB_STATUS,), "stdout", ["table", "json"]),
    "jobs wait": ((JOB_STATUS,), "stdout", ["table", "json"]),
    "jobs retry-failed": ((RETRY,), "stdout", ["table", "json"]),
    "demo": ((DEMO,), "stdout", ["table", "json"]),
    "batches list": ((BATCHES, BATCH_PAGE), "stdout", ["table", "jsonl", "json", "csv"]),
    "batches get": ((BATCH,), "stdout", ["table", "json"]),
    "batches cancel": ((BATCH,), "stdout", ["table", "json"]),
    "batches wait": ((BATCH,), "stdout", ["table", "json"]),
    "batches create": ((BATCH,), "stdout", ["table", "json"]),
    "batches download": ((DOWNLOADS,), "file", ["files", "jsonl"]),
    "directories files": (
        (DIRECTORY_FILES, FILE_PAGE),
        "stdout",
        ["table", "jsonl", "json", "csv"],
    ),
}

#: the arguments each command requires besides --format
REQUIRED = {
    "items list": ["--job-id", "j"],
    "items summary": ["--job-id", "j"],
    "items export": ["--job-id", "j", "-o", "x.jsonl"],
    "items results": ["--item-id", "i"],
    "items download": ["--job-id", "j", "-o", "d"],
    "jobs list": [],
    "jobs status": ["--job-id", "j"],
    "jobs cancel": ["--job-id", "j"],
    "jobs watch": ["--job-id", "j"],
    "jobs wait": ["--job-id", "j"],
    "jobs retry-failed": ["--job-id", "j"],
    "demo": [],
    "batches list": [],
    "batches get": ["--batch-id", "b"],
    "batches cancel": ["--batch-id", "b"],
    "batches wait": ["--batch-id", "b"],
    "batches create": [
        "--job-type",
        "parse_v2",
        "--configuration-id",
        "c",
        "--source-directory-id",
        "d",
    ],
    "batches download": ["--batch-id", "b", "-o", "d"],
    "directories files": ["--directory-id", "d"],
}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


def format_options(
    parser: argparse.ArgumentParser, path: str = ""
) -> Iterator[tuple[str, argparse.Action]]:
    """(command, its --format action) for every command of the parser tree."""
    for action in parser._actions:
        if "--format" in action.option_strings:
            yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from format_options(sub, f"{path} {name}".strip())


def test_every_format_option_comes_from_the_registry() -> None:
    found = dict(format_options(build_parser()))
    assert sorted(found) == sorted(COMMANDS)  # a new command is declared here too
    for command, action in found.items():
        records, to, shipped = COMMANDS[command]
        assert action.choices == names(*records, to=to, default=action.default), command
        assert action.choices == shipped, command
        for name in shipped:
            writers = FORMATS[name].stdout if to == "stdout" else FORMATS[name].file
            assert all(r in writers for r in records), (command, name)


def test_file_formats_are_what_an_export_state_can_record() -> None:
    recorded = get_args(get_type_hints(_StateFile)["format"])
    assert sorted(recorded) == sorted(names(ITEMS, to="file"))
    assert [f.name for f in FORMATS.values() if f.appendable] == ["jsonl", "csv"]


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.csv", "csv"),
        ("dir.v2/a.parquet", "parquet"),
        ("a.json", "jsonl"),  # json is not a file format: the default
        ("a", "jsonl"),
    ],
)
def test_export_format_from_the_extension(path: str, fmt: str) -> None:
    assert infer_format(path) == fmt


@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_an_unknown_format_is_a_usage_error_naming_the_valid_ones(command: str) -> None:
    r = await cli(*command.split(), *REQUIRED[command], "--format", "xml")
    assert r.code == 2
    assert r.out == ""
    last = r.err.splitlines()[-1]
    assert "argument --format: invalid choice: 'xml'" in last
    for name in COMMANDS[command][2]:
        assert f"'{name}'" in last, (command, name)


# --- one page (--limit) and a whole scan write the same records the same way ----------

JOB = "bjb-cli-formats"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [SimJob(job_id=JOB, total_items=60, seed=4), SimJob(job_id="bjb-2", total_items=3)]
    async with Simulator(jobs=jobs) as s:
        yield s


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
async def test_a_page_is_written_as_its_records(sim: Simulator, fmt: str) -> None:
    whole = await cli(
        "items", "list", "--job-id", JOB, "--page-size", "60", "--format", fmt, sim=sim
    )
    page = await cli("items", "list", "--job-id", JOB, "--limit", "60", "--format", fmt, sim=sim)
    assert (whole.code, page.code) == (0, 0)
    assert page.out == whole.out
    assert len(whole.lines()) >= 60
    whole = await cli("jobs", "list", "--format", fmt, sim=sim)
    page = await cli("jobs", "list", "--limit", "10", "--format", fmt, sim=sim)
    assert (whole.code, page.code) == (0, 0)
    assert page.out == whole.out
    assert JOB in whole.out

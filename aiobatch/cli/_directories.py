"""``aiobatch directories files``: a directory's files (the names a v2 batch's
source files have), with the official CLI's flag names (``--directory-id``,
``--page-size``, ``--page-token``, ``--max-items``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from .._client import BatchClient
from .._errors import NotFoundError, PermissionDeniedError
from ..models import DirectoryFile
from ._context import Context, HelpFormatter, non_negative_int, page_size_int
from ._formats import DIRECTORY_FILES, FILE_PAGE, add_format_option, write_cursor_listing
from ._items import CSV_RAW_HELP
from ._output import print_table

__all__ = ["FILE_CSV_FIELDS", "draw_files", "register", "source_names"]

#: Columns of ``directories files --format csv``, in wire-field order.
FILE_CSV_FIELDS = (
    "id",
    "display_name",
    "directory_id",
    "project_id",
    "unique_id",
    "file_id",
    "created_at",
    "updated_at",
    "deleted_at",
)


def _ts(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def draw_files(out: IO[str], files: Sequence[DirectoryFile]) -> None:
    rows = [[f.id, f.display_name, _ts(f.updated_at)] for f in files]
    print_table(out, ["file id", "name", "updated"], rows)


async def source_names(ctx: Context, client: BatchClient, batch_id: str) -> dict[str, str]:
    """File id -> ``display_name`` of a batch's source directory.  A directory
    this key cannot read (403, 404) leaves the files named by id, with a note."""
    batch = await client.batches.get(batch_id)
    names: dict[str, str] = {}
    try:
        async for f in client.directories.iter_files(batch.source_directory_id, page_size=1000):
            names[f.id] = f.display_name
    except (PermissionDeniedError, NotFoundError) as exc:
        ctx.note(f"files named by id: cannot list directory {batch.source_directory_id}: {exc}")
        return {}
    return names


async def cmd_files(ctx: Context) -> int:
    a = ctx.args
    ctx.subject = f"directory {a.directory_id}"
    async with ctx.client() as client:
        return await write_cursor_listing(
            ctx,
            one_page=lambda token: client.directories.list_files(
                a.directory_id, page_size=a.page_size, page_token=token
            ),
            pages=lambda **options: client.directories.iter_file_pages(a.directory_id, **options),
            page_records=FILE_PAGE,
            records=DIRECTORY_FILES,
        )


def register(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    directories = sub.add_parser(
        "directories",
        help="directories (/api/v1/beta/directories): their files",
        description="Read directories: the source files of v2 batches.",
        parents=common,
        formatter_class=HelpFormatter,
    )
    dsub = directories.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = dsub.add_parser(
        "files",
        help="list a directory's files (id and display name)",
        description="List a directory's files: each file's id (what a v2 batch's results "
        "call source_directory_file_id) and display_name.  Without --page-token every "
        "page is read (up to --max-items); with it, that one page is printed and the "
        "token of the next goes to stderr.",
        parents=common,
        formatter_class=HelpFormatter,
        epilog="""examples:
  aiobatch directories files --directory-id dir-1
  aiobatch directories files --directory-id dir-1 --format csv > files.csv""",
    )
    p.add_argument("--directory-id", required=True, metavar="ID")
    p.add_argument("--page-size", type=page_size_int, metavar="N", help="files per request")
    p.add_argument("--page-token", metavar="TOKEN", help="print only the page at this token")
    p.add_argument("--max-items", type=non_negative_int, metavar="N", help="stop after N")
    add_format_option(p, DIRECTORY_FILES, FILE_PAGE, default="table")
    p.add_argument("--csv-raw", action="store_true", help=CSV_RAW_HELP)
    p.set_defaults(handler=cmd_files)

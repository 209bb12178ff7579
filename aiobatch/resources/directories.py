"""``client.directories``: a directory's files (``GET /api/v1/beta/directories/
{directory_id}/files``), where a v2 batch's source files get their names.

Cursor-paged (``page_size`` / ``page_token``), so its scans walk pages in
sequence as the batch listing does, refuse a token that repeats, and resume
with ``start_token``.
"""

from __future__ import annotations

import operator
import sys

from .. import _protocol as proto
from .._paging import Endpoint, ItemIterator, PageIterator, Resolved, Scan, ScanKw, ScanOptions
from ..models import DirectoryFile, DirectoryFileList
from ._declare import Declared, fixed, options_of
from ._requester import Api

if sys.version_info >= (3, 12):  # pragma: no cover
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["DIRECTORIES", "Directories", "FileScanKw"]

#: The root of the directories API.
DIRECTORIES = "/api/v1/beta/directories"

_FILE_ARGS = frozenset({"organization_id", "project_id"})


class FileScanKw(ScanKw, total=False):
    """What every form of a file listing takes besides ``directory_id``."""

    options: ScanOptions | None
    organization_id: str | None
    project_id: str | None


def files_endpoint(directory_id: str) -> Endpoint[DirectoryFileList, DirectoryFile]:
    return Endpoint(
        path=proto.api_path(DIRECTORIES, "/{directory_id}/files", directory_id=directory_id),
        page=DirectoryFileList,
        items=operator.attrgetter("items"),
        key=operator.attrgetter("id"),
        next_token=operator.attrgetter("next_page_token"),
        limit_param="page_size",
        token_param="page_token",
        defaults=ScanOptions(page_size=100),
    )


class Directories:
    def __init__(self, api: Api) -> None:
        self._api = api

    async def list_files(
        self,
        directory_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> DirectoryFileList:
        """One page of a directory's files; pass ``page.next_page_token`` back as
        ``page_token`` for the next one (``iter_files`` does it for you)."""
        endpoint = files_endpoint(directory_id)
        if page_token is not None and (not isinstance(page_token, str) or not page_token):
            raise ValueError("page_token must be a non-empty str (a page's next_page_token)")
        params = self._api.scope(organization_id, project_id)
        params.update(
            proto.query(
                page_size=proto.check_limit(page_size, name="page_size"), page_token=page_token
            )
        )
        return await self._api.call(DirectoryFileList, "GET", endpoint.path, params=params)

    def iter_files(
        self, directory_id: str, **kw: Unpack[FileScanKw]
    ) -> ItemIterator[DirectoryFile]:
        """Every file of a directory: ``async for f in client.directories.iter_files(d)``
        (``f.id``, ``f.display_name``)."""
        return self._declare(directory_id, kw).items()

    def iter_file_pages(
        self, directory_id: str, **kw: Unpack[FileScanKw]
    ) -> PageIterator[DirectoryFile]:
        """Every page of a directory's files (``page.next_token`` resumes after it)."""
        return self._declare(directory_id, kw).pages()

    def scan_files(self, directory_id: str, **kw: Unpack[FileScanKw]) -> Scan[DirectoryFile]:
        """``async with client.directories.scan_files(d) as pages:`` (the structured form)."""
        return self._declare(directory_id, kw).scan()

    def _declare(self, directory_id: str, kw: FileScanKw) -> Declared[DirectoryFile]:
        endpoint = files_endpoint(directory_id)
        scope = self._api.scope(kw.get("organization_id"), kw.get("project_id"))
        opts = options_of(endpoint.defaults, kw, _FILE_ARGS)
        return Declared(self._api, endpoint, fixed(Resolved(scope)), opts)

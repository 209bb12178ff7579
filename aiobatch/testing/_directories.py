"""A directory's files in the simulator: ``GET /api/v1/beta/directories/{id}/files``.

A directory holds the source files of every batch made over it (``SimBatch(
source_directory_id=...)``), in batch order then file order; each file's
``display_name`` is a pure function of its id: mostly ordinary names, with some
repeated, some non-ASCII and some a naive downloader would trust as a path.
Cursor-paged: the token is an opaque position; ``page_size`` has no published
bounds, so anything below 1 means the default and anything above 1000 is capped.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._app import _json
from ._validate import ApiError

if TYPE_CHECKING:  # pragma: no cover
    from ._batches import BatchStore

__all__ = ["DIRECTORIES", "directory_files", "display_name_of", "list_directory_files"]

DIRECTORIES = "/api/v1/beta/directories"
_NAMES = (
    "invoice.pdf",
    "contract-2024.pdf",
    "Überweisung März.pdf",
    "../../etc/passwd",
    "scan 01.png",
    "report.pdf",
    '=HYPERLINK("http://x.invalid")',
    "\x1b[31mred\x1b[0m.pdf",
)


def display_name_of(file_id: str) -> str:
    """Every third file has an ordinary, unique name; the rest share a few names
    (collisions, non-ASCII, path-like), as uploaded directories do."""
    h = int.from_bytes(hashlib.blake2b(file_id.encode(), digest_size=4).digest(), "big")
    if h % 3:
        return f"document-{file_id[-6:]}.pdf"
    return _NAMES[(h // 3) % len(_NAMES)]


def directory_files(store: BatchStore, directory_id: str) -> list[dict[str, Any]]:
    from ._batches import file_id_of  # (it imports this module)

    seen: dict[str, dict[str, Any]] = {}
    for state in sorted(store.ordered(), key=lambda s: s.batch.batch_id):
        b = state.batch
        if b.source_directory_id != directory_id:
            continue
        for i in range(b.files):
            fid = file_id_of(b.batch_id, i)
            seen.setdefault(
                fid,
                {
                    "id": fid,
                    "directory_id": directory_id,
                    "display_name": display_name_of(fid),
                    "project_id": b.project_id,
                    "unique_id": f"{directory_id}/{fid}",
                },
            )
    return list(seen.values())


def _position(token: str | None) -> int:
    if token is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
        if raw.startswith("f") and raw[1:].isdigit():
            return int(raw[1:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError(400, "Invalid page_token")


async def list_directory_files(request: web.Request) -> web.StreamResponse:
    from ._batches import BATCHES

    store: BatchStore = request.app[BATCHES]
    files = directory_files(store, request.match_info["directory_id"])
    try:
        size = int(request.query.get("page_size", "100"))
    except ValueError:
        raise ApiError(422, "page_size must be an integer") from None
    size = 100 if size < 1 else min(size, 1000)
    start = _position(request.query.get("page_token"))
    end = start + size
    token = base64.urlsafe_b64encode(f"f{end}".encode()).decode() if end < len(files) else None
    return _json(200, {"items": files[start:end], "next_page_token": token})

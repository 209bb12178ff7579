"""The source directories of v2 batches, in the simulator: a minimal
``GET /api/v1/beta/directories/{directory_id}/files`` (cursor-paged), where a v2
result's ``source_directory_file_id`` gets its ``display_name``.

A directory holds the source files of every batch made over it (oldest batch
first, then file order); nothing is stored.  With ``SimBatch.hostile_names`` one
file in three gets a name a naive downloader would trust (``../../etc/passwd``,
control characters, duplicates...).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from aiohttp import web

from ._app import SIM, SimHost, _json
from ._batches import BATCHES, _iso, _timestamp, file_id_of
from ._results import HOSTILE_EVERY, HOSTILE_NAMES
from ._validate import ApiError, Errors

__all__ = ["DIRECTORIES", "add_directory_routes", "directory_files", "display_name_of"]

DIRECTORIES = "/api/v1/beta/directories"
#: Names uploaded directories really hold: shared (collisions), non-ASCII,
#: path-like, a formula, a terminal escape.
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
    """A source file's ``display_name``, a pure function of its id: two files in
    three have an ordinary, unique name; the rest share a few awkward ones."""
    h = int.from_bytes(hashlib.blake2b(file_id.encode(), digest_size=4).digest(), "big")
    if h % 3:
        return f"document-{file_id[-6:]}.pdf"
    return _NAMES[(h // 3) % len(_NAMES)]


def _display_name(batch: Any, index: int) -> str:
    # hostile_names adds, every third file, the names of the v1 results' test set.
    if batch.hostile_names and index % HOSTILE_EVERY == 0:
        return HOSTILE_NAMES[(index // HOSTILE_EVERY) % len(HOSTILE_NAMES)]
    return display_name_of(file_id_of(batch.batch_id, index))


def directory_files(request: web.Request, directory_id: str) -> list[dict[str, Any]]:
    """Every file of a directory, in listing order; 404 for a directory no
    batch names."""
    store = request.app[BATCHES]
    states = [s for s in store.ordered() if s.batch.source_directory_id == directory_id]
    if not states:
        raise ApiError(404, f"Directory {directory_id} not found")
    out: list[dict[str, Any]] = []
    for state in reversed(states):  # oldest batch first
        b = state.batch
        created = _iso(state.created_at)
        for i in range(b.files):
            file_id = file_id_of(b.batch_id, i)
            out.append(
                {
                    "id": file_id,
                    "directory_id": directory_id,
                    "display_name": _display_name(b, i),
                    "project_id": b.project_id,
                    "unique_id": f"{b.batch_id}/{i}",
                    "file_id": "fil-" + file_id.removeprefix("dfl-"),
                    "created_at": created,
                    "updated_at": created,
                    "deleted_at": None,
                    "download_url": None,
                    "metadata": None,
                }
            )
    return out


def _offset(errors: Errors) -> int:
    raw = errors.query.get("page_token")
    if not raw:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind == "file" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    errors.add("value_error", ["query", "page_token"], "Value error, invalid page token", raw)
    return 0


def _wanted(request: web.Request, errors: Errors) -> Any:
    q = request.query
    after = _timestamp(errors, "updated_at_on_or_after")
    before = _timestamp(errors, "updated_at_on_or_before")
    exact = {k: q[k] for k in ("display_name", "file_id", "unique_id") if k in q}
    contains = q.get("display_name_contains")

    def wanted(f: dict[str, Any], updated: float) -> bool:
        return (
            all(f[k] == v for k, v in exact.items())
            and (contains is None or contains in f["display_name"])
            and (after is None or updated >= after)
            and (before is None or updated <= before)
        )

    return wanted


async def list_directory_files(request: web.Request) -> web.StreamResponse:
    host: SimHost = request.app[SIM]
    errors = Errors(request.query)
    page_size = errors.integer("page_size", host.default_limit, ge=1, le=host.max_limit)
    offset = _offset(errors)
    wanted = _wanted(request, errors)
    errors.raise_if_any()
    assert page_size is not None
    files = directory_files(request, request.match_info["directory_id"])
    store = request.app[BATCHES]
    created = {s.batch.batch_id: s.created_at for s in store.ordered()}
    listing = [f for f in files if wanted(f, created[f["unique_id"].partition("/")[0]])]
    page = listing[offset : offset + page_size]
    end = offset + len(page)
    token = base64.urlsafe_b64encode(f"file:{end}".encode()).decode().rstrip("=")
    return _json(200, {"items": page, "next_page_token": token if end < len(listing) else None})


def add_directory_routes(app: web.Application) -> None:
    from ._app import ENDPOINT

    ENDPOINT[list_directory_files] = "directory_files"
    app.router.add_get(DIRECTORIES + "/{directory_id}/files", list_directory_files)

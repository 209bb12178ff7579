"""The contents of a completed v2 parse job (``GET /api/v2/parse/{job_id}``):
every ``expand`` shape the official SDK's types require, the result objects
behind ``*_content_metadata`` (served by the storage listener), and the tier rule.
Pure functions of the job id: the same request always gives the same bytes."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from ._results import result_content

__all__ = [
    "CONTENT_OBJECTS",
    "PARSE_EXPANDS",
    "PARSE_INLINE",
    "ParseContent",
    "fast_tier_refusal",
    "stored_object",
]

PARSE_INLINE = (
    "markdown_full",
    "text_full",
    "markdown",
    "text",
    "items",
    "metadata",
    "forms",
    "job_metadata",
    "usage",
)

_PAGE_CHARS = 1500


def _hash(job_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(), "big")


def _size(job_id: str) -> int:
    return 200 + (_hash(job_id) >> 16) % 5000


_FAST_REFUSED = frozenset(
    {
        "markdown",
        "markdown_full",
        "items",
        "markdown_content_metadata",
        "markdown_full_content_metadata",
        "items_content_metadata",
    }
)


def fast_tier_refusal(tier: str, expand: list[str]) -> str | None:
    """The ``detail`` a ``fast``-tier job answers to an expand it cannot give."""
    if tier != "fast":
        return None
    refused = [e for e in expand if e in _FAST_REFUSED]
    if not refused:
        return None
    noun = "Items" if all(e.startswith("items") for e in refused) else "Markdown"
    return f"{noun} expansion is not available for FAST tier jobs."


class ParseContent:
    """The parsed document of one completed v2 parse job, in every shape."""

    def __init__(self, job_id: str, file_id: str, size: int | None = None) -> None:
        self.markdown = result_content(job_id, file_id, _size(job_id) if size is None else size)
        self.text = self.markdown.replace("#", "")
        md = self.markdown
        self.pages = [md[k : k + _PAGE_CHARS] for k in range(0, len(md), _PAGE_CHARS)] or [""]
        self.job_id = job_id

    def expanded(self, name: str) -> Any:
        pages = self.pages
        if name == "markdown_full":
            return self.markdown
        if name == "text_full":
            return self.text
        if name == "markdown":
            return {
                "pages": [
                    {"page_number": n + 1, "markdown": p, "success": True}
                    for n, p in enumerate(pages)
                ]
            }
        if name == "text":
            return {
                "pages": [
                    {"page_number": n + 1, "text": p.replace("#", "")} for n, p in enumerate(pages)
                ]
            }
        if name == "items":
            return {
                "pages": [
                    {
                        "page_number": n + 1,
                        "page_width": 612.0,
                        "page_height": 792.0,
                        "success": True,
                        "items": [{"type": "text", "value": p.replace("#", ""), "md": p}],
                    }
                    for n, p in enumerate(pages)
                ]
            }
        if name == "metadata":
            return {
                "pages": [{"page_number": n + 1, "confidence": 0.97} for n in range(len(pages))],
                "document": {"confidence": 0.97},
            }
        if name == "forms":
            return {
                "pages": [
                    {"page_number": n + 1, "forms": [], "success": True} for n in range(len(pages))
                ]
            }
        assert name == "job_metadata", name
        return {
            "job_pages": len(pages),
            "credits_used": len(pages) * 3.0,
            "job_is_cache_hit": _hash(self.job_id) % 5 == 0,
        }


#: ``*_content_metadata`` expand -> the name its object has in
#: ``result_content_metadata`` and what the object holds (None: never produced by
#: this simulator: ``exists`` false).  The names are this simulator's assumption;
#: the API publishes only that it is a map of result names.
CONTENT_OBJECTS: dict[str, tuple[str, str | None]] = {
    "markdown_content_metadata": ("md", "markdown_full"),
    "markdown_full_content_metadata": ("md", "markdown_full"),
    "text_content_metadata": ("text", "text_full"),
    "text_full_content_metadata": ("fullText", "text_full"),
    "items_content_metadata": ("json", "items"),
    "metadata_content_metadata": ("metadata", "metadata"),
    "forms_content_metadata": ("forms", "forms"),
    "raw_words_content_metadata": ("rawWords", None),
    "xlsx_content_metadata": ("xlsx", None),
    "output_pdf_content_metadata": ("outputPDF", None),
}
_OBJECT_FIELD = dict(CONTENT_OBJECTS.values())
#: Every ``expand`` value the endpoint takes.
PARSE_EXPANDS = (*PARSE_INLINE, *CONTENT_OBJECTS, "images_content_metadata")


def stored_object(content: ParseContent, name: str) -> tuple[bytes, str] | None:
    """The bytes a presigned URL serves for result object ``name``."""
    field = _OBJECT_FIELD.get(name)
    if field is None:
        return None
    value = content.expanded(field)
    if isinstance(value, str):
        kind = "text/markdown" if field.startswith("markdown") else "text/plain"
        return value.encode(), kind
    return msgspec.json.encode(value), "application/json"


def usage(content: ParseContent) -> dict[str, Any]:
    return {"credits": len(content.pages) * 3.0}

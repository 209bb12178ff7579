"""The consumer's position, and the only place a scan's errors get a resume point.

The engine runs ahead of the consumer (pages in flight, pages in the outbox,
pages in the stream's buffer), so a position computed where a failure happens
names items the consumer never received.  Errors therefore leave the engine
without a position; the consumer's iterator stamps them with its own
``ScanProgress`` as it raises them (``at_consumer``), so no other position can
reach the caller.
"""

from __future__ import annotations

from .._errors import AiobatchError, DriftError, PageFetchError, PaginationError
from .types import ScanProgress

__all__ = ["at_consumer", "cut", "resume_hint"]

#: Server text (tokens, item ids) quoted in a message is cut to this many characters.
MAX_QUOTED = 80


def cut(text: str, *, instead: str | None = None) -> str:
    """``text`` quoted for a message, cut (a server's text can be any size): a
    long one is shown by its start, or named by ``instead``."""
    if len(text) <= MAX_QUOTED:
        return repr(text)
    if instead is not None:
        return f"{instead} (a {len(text)}-character token)"
    return f"{text[:MAX_QUOTED]!r}... ({len(text)} characters)"


def resume_hint(progress: ScanProgress) -> str:
    """A call that continues after what the consumer received."""
    if progress.style == "cursor":
        token, skip = progress.next_token, progress.next_skip
        if token is None and not skip:
            return "a new scan"
        parts = [] if token is None else [f"start_token={cut(token, instead='error.next_token')}"]
        if skip:
            parts.append(f"start_skip={skip}")
        return ", ".join(parts)
    mode = progress.filter_mode
    hint = f", filter_mode={mode!r}" if mode in ("server", "client") else ""
    return f"start_offset={progress.next_offset}{hint}"


def where(progress: ScanProgress) -> str:
    """What the consumer received, in words, and how to go on from there."""
    if progress.style == "cursor":
        got = f"the first {progress.items} items were received"
    else:
        got = f"every item before offset {progress.next_offset} was received"
    return f"{got}: resume with {resume_hint(progress)}"


def at_consumer(error: Exception, progress: ScanProgress) -> Exception:
    """The error a scan's consumer raises: engine errors stamped with its position.

    A page that failed before the consumer received anything is raised as its
    cause (``except APIConnectionError`` works; there is nothing to resume).
    """
    if not isinstance(error, PaginationError):
        return error
    if isinstance(error, PageFetchError) and progress.pages == 0:
        return error.error
    offset = progress.items if progress.style == "cursor" else progress.next_offset
    token, skip = progress.next_token, progress.next_skip
    message = f"{error}; {where(progress)}"
    out: PaginationError
    if isinstance(error, PageFetchError):
        out = PageFetchError(
            message, offset=offset, error=error.error, next_token=token, next_skip=skip
        )
    else:
        cls = DriftError if isinstance(error, DriftError) else PaginationError
        out = cls(message, offset=offset, next_token=token, next_skip=skip)
    out.__cause__ = error.__cause__
    return out.with_traceback(error.__traceback__)


def page_failed(error: AiobatchError, what: str) -> PageFetchError:
    """A request of the scan failed for good; the consumer adds where it stands."""
    exc = PageFetchError(f"{what}: {error}", offset=-1, error=error)
    exc.__cause__ = error
    return exc

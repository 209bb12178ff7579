"""The argument checks every public entry point shares: one rule, one wording.

A wrong type is a ``TypeError``, a number out of range a ``ValueError`` (for
the client's own settings a ``ConfigurationError``, which is one); ``bool`` is
never a number here, though Python counts it as an ``int``.
"""

from __future__ import annotations

import math

from ._errors import ConfigurationError

__all__ = ["check_int", "check_seconds"]


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An ``int`` within ``[minimum, maximum]``; the error names ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        wanted = f">= {minimum}" if maximum is None else f"within [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {wanted}, got {value}")
    return value


def check_seconds(
    name: str, value: object, *, none_ok: bool = False, zero_ok: bool = False
) -> float | None:
    """A duration: a finite real number of seconds above 0 (or 0 with ``zero_ok``,
    ``None`` with ``none_ok``).  aiohttp turns ``inf`` into an ``OverflowError`` on
    every request, and ``nan``, a negative number or ``True`` make no sense."""
    if value is None and none_ok:
        return None
    expected = f"a finite number of seconds {'>= 0' if zero_ok else '> 0'}" + (
        ", or None" if none_ok else ""
    )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be {expected}; got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ConfigurationError(f"{name} must be {expected}; got {value!r}")
    return float(value)

"""A fake clock for workflow tests (``FakeTime``, shared with the CLI tests)."""

from __future__ import annotations

from _clock import FakeTime

__all__ = ["FakeTime"]

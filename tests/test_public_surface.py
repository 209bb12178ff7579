"""What ``aiobatch`` exports: every name resolves, every error is in the tree."""

from __future__ import annotations

import aiobatch

#: The types a user holds (returned by the client) and so may annotate with.
HELD = (
    "ClientConfig",
    "FileResult",
    "FileResultIterator",
    "ItemIterator",
    "PageIterator",
    "RequestBudget",
    "Response",
    "ResultIterator",
    "Scan",
    "Transport",
)


def test_every_exported_name_resolves() -> None:
    missing = [name for name in aiobatch.__all__ if not hasattr(aiobatch, name)]
    assert missing == []
    assert len(set(aiobatch.__all__)) == len(aiobatch.__all__)


def test_the_types_users_hold_are_exported() -> None:
    assert [name for name in HELD if name not in aiobatch.__all__] == []


def test_every_exported_error_is_an_aiobatch_error() -> None:
    errors = [
        obj
        for name in aiobatch.__all__
        if isinstance(obj := getattr(aiobatch, name), type) and issubclass(obj, BaseException)
    ]
    assert aiobatch.UnsupportedJobTypeError in errors
    assert [e.__name__ for e in errors if not issubclass(e, aiobatch.AiobatchError)] == []

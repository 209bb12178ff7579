"""The fault and security suite: the real client against a hostile server.

A package (not a bare directory) so that its helpers and ``conftest.py`` get
names of their own (``faults.conftest``) beside the top-level ``tests/conftest.py``.
"""

import pytest

# The shared helpers assert too: show their comparisons like a test's own.
pytest.register_assert_rewrite("faults.fault_support")

"""One duration check for the whole client: the same error type and words."""

from __future__ import annotations

import math

import pytest

from aiobatch import BatchClient, ConfigurationError, Timeout
from aiobatch._config import check_seconds


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, True, "1"])
def test_a_watch_interval_is_checked_as_a_timeout_is(value: object) -> None:
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match=r"^poll_interval must be a finite number"):
        client.jobs.watch("bjb-1", poll_interval=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^Timeout\.total must be a finite number"):
        Timeout(total=value)  # type: ignore[arg-type]


def test_zero_and_none_only_where_allowed() -> None:
    assert check_seconds("settle", 0, zero_ok=True) == 0.0
    assert check_seconds("timeout", None, none_ok=True) is None
    with pytest.raises(ConfigurationError, match=r"^settle must be .* >= 0; got -1$"):
        check_seconds("settle", -1, zero_ok=True)
    with pytest.raises(ConfigurationError, match=r"^t must be .* > 0; got None$"):
        check_seconds("t", None)

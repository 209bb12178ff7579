"""One duration check for the whole client: the same error type and words."""

from __future__ import annotations

import math

import pytest

from aiobatch import BatchClient, ConfigurationError, Timeout
from aiobatch._checks import check_int, check_seconds


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


@pytest.mark.parametrize("value", [True, 2.5, "3", None])
def test_an_integer_of_the_wrong_type_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match=rf"^n must be an int, got {type(value).__name__}$"):
        check_int("n", value, minimum=0)


def test_an_integer_out_of_range_names_the_range() -> None:
    assert check_int("n", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"^n must be >= 1, got 0$"):
        check_int("n", 0, minimum=1)
    with pytest.raises(ValueError, match=r"^n must be within \[1, 8\], got 9$"):
        check_int("n", 9, minimum=1, maximum=8)

"""``User-Agent: aiobatch/<version>`` and ``LLAMA_CLOUD_CUSTOM_HEADERS``, read as the
official SDK reads it (one ``Name: value`` a line, split at the first colon)."""

from __future__ import annotations

import pytest
from _contract import Contract, app
from _servers import serve

from aiobatch import BatchClient, ConfigurationError, RetryPolicy, __version__
from aiobatch._config import parse_custom_headers


def test_parsed_like_the_sdk() -> None:
    raw = "X-Team: data\nno colon here\n  X-Trace :  a:b:c  \r\n\nx-team: ml"
    assert parse_custom_headers(raw) == (("x-team", "ml"), ("X-Trace", "a:b:c"))
    assert parse_custom_headers(None) == ()
    assert parse_custom_headers("") == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("Authorization: Bearer other", "Authorization is set by the client"),
        ("accept-encoding: br", "accept-encoding is set by the client"),
        ("Bad Name: x", "line 1: 'Bad Name' is not a valid header name"),
        ("X-Ok: 1\n: empty", "line 2: '' is not a valid header name"),
        ("X-Bell: a\x07b", "the value of X-Bell has control characters"),
    ],
)
def test_bad_lines_are_named_without_their_value(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="LLAMA_CLOUD_CUSTOM_HEADERS") as info:
        parse_custom_headers(raw)
    assert message in str(info.value)
    assert "Bearer other" not in str(info.value)


async def test_sent_on_every_request_with_our_user_agent(
    monkeypatch: pytest.MonkeyPatch, policy: RetryPolicy
) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_CUSTOM_HEADERS", "X-Proxy-Token: tkn-1\nX-Team: data")
    state = Contract()
    async with serve(app(state)) as url, BatchClient("llx-k", base_url=url, retry=policy) as c:
        await c.jobs.get("bjb-1")
        assert "tkn-1" not in repr(c.config)
    (seen,) = state.seen
    assert seen.headers["User-Agent"] == f"aiobatch/{__version__}"
    assert seen.headers["X-Proxy-Token"] == "tkn-1"
    assert seen.headers["X-Team"] == "data"
    assert seen.headers["Authorization"] == "Bearer llx-k"


async def test_a_custom_user_agent_replaces_ours_once(
    monkeypatch: pytest.MonkeyPatch, policy: RetryPolicy
) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_CUSTOM_HEADERS", "user-agent: mine/1")
    state = Contract()
    async with serve(app(state)) as url, BatchClient("llx-k", base_url=url, retry=policy) as c:
        await c.jobs.get("bjb-1")
    assert [v for k, v in state.seen[0].raw_headers if k.lower() == "user-agent"] == ["mine/1"]

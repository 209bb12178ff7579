"""Configuration: API key and base URL resolution, Timeout / Limits validation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _servers import RecordingSleep
from conftest import API_KEY

from aiobatch import (
    DEFAULT_BASE_URL,
    EU_BASE_URL,
    BatchClient,
    ConfigurationError,
    Limits,
    RetryPolicy,
    Timeout,
    __version__,
)
from aiobatch._config import ClientConfig, _Secret, normalise_base_url

pytestmark = pytest.mark.usefixtures("no_env")


def resolve(**kw: Any) -> ClientConfig:
    args: dict[str, Any] = {
        "api_key": None,
        "base_url": None,
        "organization_id": None,
        "project_id": None,
        "timeout": None,
        "limits": None,
        "retry": None,
        "max_retries": None,
        "env": {},
    }
    args.update(kw)
    return ClientConfig.resolve(**args)


# --- API key --------------------------------------------------------------------


def test_key_from_argument_wins_over_env() -> None:
    cfg = resolve(
        api_key="arg-key", env={"LLAMA_CLOUD_API_KEY": "env-1", "LLAMA_PARSE_API_KEY": "env-2"}
    )
    assert cfg.api_key.reveal() == "arg-key"


def test_key_from_llama_cloud_env() -> None:
    cfg = resolve(env={"LLAMA_CLOUD_API_KEY": "env-1", "LLAMA_PARSE_API_KEY": "env-2"})
    assert cfg.api_key.reveal() == "env-1"


def test_key_falls_back_to_llama_parse_env() -> None:
    assert resolve(env={"LLAMA_PARSE_API_KEY": "env-2"}).api_key.reveal() == "env-2"
    # an empty primary variable does not shadow the fallback
    cfg = resolve(env={"LLAMA_CLOUD_API_KEY": "", "LLAMA_PARSE_API_KEY": "env-2"})
    assert cfg.api_key.reveal() == "env-2"


def test_key_from_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_PARSE_API_KEY", "from-parse")
    assert BatchClient().config.api_key.reveal() == "from-parse"
    monkeypatch.setenv("LLAMA_CLOUD_API_KEY", "from-cloud")
    assert BatchClient().config.api_key.reveal() == "from-cloud"
    assert BatchClient("explicit").config.api_key.reveal() == "explicit"


@pytest.mark.parametrize("env", [{}, {"LLAMA_CLOUD_API_KEY": ""}, {"OTHER": "x"}])
def test_no_key_is_a_configuration_error(env: dict[str, str]) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^no API key: pass api_key=... or set LLAMA_CLOUD_API_KEY"
    ):
        resolve(env=env)


def test_no_key_in_process_environment() -> None:
    with pytest.raises(ConfigurationError, match="no API key"):
        BatchClient()


@pytest.mark.parametrize(
    "key",
    [
        f"{API_KEY}\n",
        f"{API_KEY}\r\nX-Evil: 1",
        f" {API_KEY}",
        "a b",
        "tab\there",
        "nul\x00",
        "é-key",
    ],
)
def test_key_with_whitespace_or_controls_is_refused_without_echo(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        BatchClient(key)
    assert str(info.value) == (
        "the API key contains whitespace or control characters; check how it was set"
    )
    assert API_KEY not in str(info.value)


def test_key_from_env_with_newline_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_API_KEY", API_KEY + "\n")
    with pytest.raises(ConfigurationError, match="whitespace or control characters"):
        BatchClient()


def test_secret_never_shows_itself() -> None:
    secret = _Secret(API_KEY)
    assert repr(secret) == "<secret>"
    assert str(secret) == "<secret>"
    assert f"{secret}" == "<secret>"
    assert secret.reveal() == API_KEY


def test_key_not_in_reprs() -> None:
    client = BatchClient(API_KEY, organization_id="org-1")
    assert API_KEY not in repr(client)
    assert API_KEY not in repr(client.config)
    assert API_KEY not in str(client.config)
    assert API_KEY not in repr(client._transport)
    assert repr(client) == f"<BatchClient base_url={DEFAULT_BASE_URL!r} state=new>"


# --- base URL -------------------------------------------------------------------


def test_base_url_default_env_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BatchClient(API_KEY).config.base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("LLAMA_CLOUD_BASE_URL", EU_BASE_URL + "/")
    assert BatchClient(API_KEY).config.base_url == EU_BASE_URL
    assert BatchClient(API_KEY, base_url="http://127.0.0.1:8080/").config.base_url == (
        "http://127.0.0.1:8080"
    )
    assert BatchClient(API_KEY, base_url="").config.base_url == EU_BASE_URL  # "" means unset


def test_default_base_urls() -> None:
    assert DEFAULT_BASE_URL == "https://api.cloud.llamaindex.ai"
    assert EU_BASE_URL == "https://api.cloud.eu.llamaindex.ai"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com", "https://api.example.com"),
        ("https://api.example.com/", "https://api.example.com"),
        ("https://api.example.com/prefix/", "https://api.example.com/prefix"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
    ],
)
def test_normalise_base_url_accepts(url: str, expected: str) -> None:
    assert normalise_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("api.cloud.llamaindex.ai", "must be an http(s) URL with a host"),
        ("ftp://example.com", "must be an http(s) URL with a host"),
        ("https://", "must be an http(s) URL with a host"),
        ("https://user:pw@example.com", "must not carry credentials"),
        ("https://example.com/?x=1", "must not have a query or fragment"),
        ("https://example.com/#frag", "must not have a query or fragment"),
        ("http://[::1", "is not a valid URL"),
        ("https://example.com:99999", "is not a valid URL"),
        ("https://example.com:port", "is not a valid URL"),
        ("https://example.com\n", "must not contain whitespace or control characters"),
        ("https://exa\r\nmple.com", "must not contain whitespace or control characters"),
        ("https://exa\tmple.com", "must not contain whitespace or control characters"),
        (" https://example.com", "must not contain whitespace or control characters"),
        ("https://ex ample.com", "must not contain whitespace or control characters"),
    ],
)
def test_bad_base_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        BatchClient(API_KEY, base_url=url)


def test_bad_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_CLOUD_BASE_URL", "not a url")
    with pytest.raises(ConfigurationError):
        BatchClient(API_KEY)


def test_credentials_in_base_url_are_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as info:
        BatchClient(API_KEY, base_url=f"ftp://user:{API_KEY}@example.com")
    assert API_KEY not in str(info.value)


# --- other settings -------------------------------------------------------------


def test_defaults() -> None:
    cfg = BatchClient(API_KEY).config
    assert cfg.timeout == Timeout(total=60.0, connect=5.0, read=30.0)
    assert cfg.limits == Limits()
    assert cfg.limits.max_body_bytes == 32 * 1024 * 1024
    assert cfg.retry.max_retries == 5
    assert cfg.organization_id is None
    assert cfg.project_id is None
    assert cfg.user_agent == f"aiobatch/{__version__}"


def test_timeout_number_means_total() -> None:
    assert BatchClient(API_KEY, timeout=12).config.timeout == Timeout(total=12.0)
    assert BatchClient(API_KEY, timeout=2.5).config.timeout == Timeout(total=2.5)
    t = Timeout(total=None, connect=1.0, read=None)
    assert BatchClient(API_KEY, timeout=t).config.timeout is t


#: Not a usable number of seconds: aiohttp raised a raw OverflowError on every
#: request for ``inf``; ``nan``, 0, negatives and bools are nonsense.
BAD_SECONDS: list[Any] = [
    0,
    0.0,
    -1,
    -0.5,
    float("inf"),
    float("-inf"),
    float("nan"),
    True,
    False,
    "5",
    [1.0],
]


@pytest.mark.parametrize("name", ["total", "connect", "read"])
@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_timeout_fields_refuse_what_is_not_a_finite_positive_number(name: str, value: Any) -> None:
    expected = (
        rf"^Timeout\.{name} must be a finite number of seconds > 0, or None; "
        rf"got {re.escape(repr(value))}$"
    )
    with pytest.raises(ConfigurationError, match=expected):
        Timeout(**{name: value})


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_client_timeout_number_is_checked_up_front_and_named(value: Any) -> None:
    expected = (
        rf"^timeout must be a finite number of seconds > 0, or None; got {re.escape(repr(value))}$"
    )
    with pytest.raises(ValueError, match=expected):
        BatchClient(API_KEY, timeout=value)


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_keepalive_timeout_is_checked(value: Any) -> None:
    expected = (
        r"^Limits\.keepalive_timeout must be a finite number of seconds > 0; "
        rf"got {re.escape(repr(value))}$"
    )
    with pytest.raises(ConfigurationError, match=expected):
        Limits(keepalive_timeout=value)


def test_large_finite_timeouts_are_fine() -> None:
    t = Timeout(total=1e12, connect=1e12, read=1e12)
    assert BatchClient(API_KEY, timeout=t).config.timeout is t
    assert BatchClient(API_KEY, timeout=10**9).config.timeout == Timeout(total=1e9)
    assert Limits(keepalive_timeout=1).keepalive_timeout == 1


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"max_connections": 0}, "max_connections must be >= 1"),
        ({"max_connections_per_host": -1}, "max_connections_per_host must be >= 0"),
        ({"max_body_bytes": 1023}, "max_body_bytes must be >= 1024"),
    ],
)
def test_limits_validation(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Limits(**kw)


def test_retry_policy_and_max_retries() -> None:
    sleep = RecordingSleep()
    policy = RetryPolicy(sleep=sleep, max_retries=2)
    assert BatchClient(API_KEY, retry=policy).config.retry is policy
    merged = BatchClient(API_KEY, retry=policy, max_retries=0).config.retry
    assert merged.max_retries == 0
    assert merged.sleep is sleep
    assert BatchClient(API_KEY, max_retries=1).config.retry.max_retries == 1
    with pytest.raises(ValueError, match="max_retries must be >= 0"):
        BatchClient(API_KEY, max_retries=-1)


def test_org_and_project_defaults() -> None:
    cfg = BatchClient(API_KEY, organization_id="org-1", project_id="prj-1").config
    assert (cfg.organization_id, cfg.project_id) == ("org-1", "prj-1")
    empty = BatchClient(API_KEY, organization_id="", project_id="").config
    assert (empty.organization_id, empty.project_id) == (None, None)

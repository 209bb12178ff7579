"""Sans-I/O protocol: argument checks, path building, response decoding, error mapping,
and ``decipher`` (a whole response, in memory, to a model or an exception)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from aiobatch import _protocol as proto
from aiobatch._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    UnprocessableEntityError,
)
from aiobatch.models import BatchItemListResponse, ItemStatus, JobStatus, JobType

API = "/api/v1/beta/batch-processing"


def _headers(**kw: str) -> dict[str, str]:
    return {k.replace("_", "-"): v for k, v in kw.items()}


# --- check_id / path -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("bjb-123", "bjb-123"),
        ("a/b", "a%2Fb"),
        ("a?b=c", "a%3Fb%3Dc"),
        ("a#frag", "a%23frag"),
        ("a%2Fb", "a%252Fb"),
        ("../admin", "..%2Fadmin"),
        ("...", "..."),
        ("a b", "a%20b"),
        ("é", "%C3%A9"),
        ("a;b&c", "a%3Bb%26c"),
    ],
)
def test_path_escapes_every_segment_completely(value: str, escaped: str) -> None:
    assert proto.path("/{job_id}/items", job_id=value) == f"{API}/{escaped}/items"


def test_path_with_no_segments_is_the_collection() -> None:
    assert proto.path("") == API
    assert proto.path("/items/{item_id}/processing-results", item_id="i/1") == (
        f"{API}/items/i%2F1/processing-results"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "job_id must be a non-empty string$"),
        ("   ", "job_id must not be blank: .*whitespace.* \\(U\\+0020 SPACE\\)$"),
        (".", "job_id must not be '.': a relative path segment"),
        ("..", "job_id must not be '..': a relative path segment"),
        (
            "a\nb",
            "job_id must not contain control characters: found U\\+000A LINE FEED at index 1$",
        ),
        ("a\rb", "job_id must not contain control characters: found U\\+000D CARRIAGE RETURN"),
        ("a\x00b", "job_id must not contain control characters: found U\\+0000 NUL"),
        ("a\tb", "job_id must not contain control characters: found U\\+0009 TAB"),
        ("a\x7fb", "job_id must not contain control characters: found U\\+007F DELETE"),
        ("\x01", "job_id must not contain control characters: found U\\+0001 \\^A at index 0"),
    ],
)
def test_check_id_refuses(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}") as info:
        proto.path("/{job_id}", job_id=value)
    assert "job_id" in str(info.value)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("\u2028", "U+2028 LINE SEPARATOR"),
        ("\u2029", "U+2029 PARAGRAPH SEPARATOR"),
        ("\u0085", "U+0085"),
        ("\u00a0", "U+00A0 NO-BREAK SPACE"),
        ("\u3000", "U+3000 IDEOGRAPHIC SPACE"),
        ("\u200b", "U+200B ZERO WIDTH SPACE"),
        ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        (" \u2028 ", "U+0020 SPACE, U+2028 LINE SEPARATOR"),
    ],
)
def test_blank_ids_say_what_they_hold(value: str, named: str) -> None:
    """A stray U+2028 (or any id that is only blank) used to be refused as "must be
    a non-empty string", which it is: the message must name what is there."""
    with pytest.raises(
        ValueError, match=r"^job_id must not be blank: it holds only whitespace"
    ) as info:
        proto.check_id("job_id", value)
    message = str(info.value)
    assert f"({named}" in message
    assert "non-empty" not in message


@pytest.mark.parametrize("value", ["\u2028x", "x\u200b", "a/b", "/", "?", "#", "..a", "a..b"])
def test_ids_with_visible_text_are_escaped_not_refused(value: str) -> None:
    """Hostile but non-blank ids stay in their segment (docs/reliability.md, case 26)."""
    assert proto.check_id("job_id", value) == value
    assert "/" not in proto.path("/{job_id}", job_id=value).removeprefix(API + "/")


@pytest.mark.parametrize("value", [None, 5, b"bytes"])
def test_check_id_refuses_non_strings(value: object) -> None:
    with pytest.raises(TypeError, match=r"^item_id must be a str"):
        proto.check_id("item_id", value)


# --- limit / offset / status ----------------------------------------------------


@pytest.mark.parametrize(("value", "ok"), [(None, None), (1, 1), (1000, 1000)])
def test_check_limit_accepts(value: int | None, ok: int | None) -> None:
    assert proto.check_limit(value) == ok


@pytest.mark.parametrize("value", [0, -1])
def test_check_limit_refuses_below_one(value: int) -> None:
    with pytest.raises(ValueError, match=f"^limit must be >= 1, got {value}$"):
        proto.check_limit(value)


@pytest.mark.parametrize("value", [True, 1.5, "10"])
def test_check_limit_and_offset_refuse_non_int(value: Any) -> None:
    with pytest.raises(TypeError, match=r"^limit must be an int"):
        proto.check_limit(value)
    with pytest.raises(TypeError, match=r"^offset must be an int"):
        proto.check_offset(value)


def test_check_offset() -> None:
    assert proto.check_offset(None) is None
    assert proto.check_offset(0) == 0
    assert proto.check_offset(7) == 7
    with pytest.raises(ValueError, match=r"^offset must be >= 0, got -1$"):
        proto.check_offset(-1)


def test_check_status_accepts_members_and_strings() -> None:
    assert proto.check_status(None, ItemStatus) is None
    assert proto.check_status("failed", ItemStatus) is ItemStatus.FAILED
    assert proto.check_status(ItemStatus.SKIPPED, ItemStatus) is ItemStatus.SKIPPED
    assert proto.check_status("running", JobStatus) is JobStatus.RUNNING
    assert proto.check_status("classify", JobType, name="job_type") is JobType.CLASSIFY
    # Case is not a typo (v1 lower case, v2 upper case: issue 24, case 14).
    assert proto.check_status("FAILED", ItemStatus) is ItemStatus.FAILED


def test_check_status_suggests_the_closest_value() -> None:
    with pytest.raises(ValueError, match=r"got 'fail' \(did you mean failed\?\)$"):
        proto.check_status("fail", ItemStatus)


@pytest.mark.parametrize("value", ["fail", "running", "", 3])
def test_check_status_refuses_unknown_values(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^status must be one of pending, processing, completed"):
        proto.check_status(value, ItemStatus)


def test_check_status_refuses_unknown_pseudo_member() -> None:
    # A value the client has only ever seen from the server is not a valid filter.
    with pytest.raises(ValueError, match="'brand-new-status'"):
        proto.check_status(ItemStatus("brand-new-status"), ItemStatus)


def test_check_status_names_the_argument() -> None:
    with pytest.raises(
        ValueError, match=r"^job_type must be one of parse, extract, classify; got 'x'$"
    ):
        proto.check_status("x", JobType, name="job_type")


# --- query ----------------------------------------------------------------------


def test_query_drops_none_renders_enums_and_ints() -> None:
    assert proto.query(limit=10, offset=0, status=ItemStatus.FAILED, project_id=None) == {
        "limit": "10",
        "offset": "0",
        "status": "failed",
    }
    assert proto.query() == {}


def test_query_refuses_control_characters() -> None:
    with pytest.raises(ValueError, match=r"^project_id must not contain control characters$"):
        proto.query(project_id="p\r\nX-Injected: 1")


# --- decode_body ----------------------------------------------------------------


def test_decode_body_ok() -> None:
    page = proto.decode_body(
        BatchItemListResponse,
        b'{"items":[],"total_size":0}',
        status=200,
        method="GET",
        url_path="/p",
    )
    assert page == BatchItemListResponse(items=[], total_size=0)


def test_decode_body_invalid_json() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        proto.decode_body(
            BatchItemListResponse, b"<html>oops</html>", status=200, method="GET", url_path="/p"
        )
    err = info.value
    assert (err.status, err.method, err.path, err.snippet) == (
        200,
        "GET",
        "/p",
        "<html>oops</html>",
    )
    assert str(err).startswith("GET /p: 200 body is not valid JSON BatchItemListResponse")
    assert "body starts: '<html>oops</html>'" in str(err)
    assert err.__cause__ is not None


def test_decode_body_schema_mismatch() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        proto.decode_body(
            BatchItemListResponse, b'{"total_size":"many"}', status=201, method="GET", url_path="/q"
        )
    assert info.value.status == 201
    assert "does not match BatchItemListResponse" in str(info.value)
    assert "$.total_size" in str(info.value)


def test_decode_body_snippet_is_bounded() -> None:
    body = b"x" * 5000
    with pytest.raises(ResponseDecodeError) as info:
        proto.decode_body(BatchItemListResponse, body, status=200, method="GET", url_path="/p")
    assert info.value.snippet == "x" * 200 + "…"


def test_decode_body_deeply_nested() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ResponseDecodeError):
        proto.decode_body(BatchItemListResponse, body, status=200, method="GET", url_path="/p")


# --- make_status_error ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (599, InternalServerError),
        (408, APIStatusError),
        (418, APIStatusError),
    ],
)
def test_make_status_error_class_and_fields(status: int, cls: type[APIStatusError]) -> None:
    err = proto.make_status_error(
        status=status,
        headers=_headers(x_request_id="req-9"),
        body=b'{"detail": "nope"}',
        method="GET",
        url_path="/api/x",
        now=0.0,
    )
    assert type(err) is cls
    assert err.status_code == status
    assert err.detail == "nope"
    assert err.request_id == "req-9"
    assert err.method == "GET"
    assert err.path == "/api/x"
    assert str(err) == f"GET /api/x -> {status}: nope"
    assert err.headers["X-Request-Id"] == "req-9"


def test_make_status_error_422_list_detail() -> None:
    detail = [
        {"loc": ["query", "limit"], "msg": "must be <= 1000", "type": "value_error"},
        {"loc": ["query", "status"], "msg": "bad enum", "type": "enum"},
    ]
    import msgspec

    err = proto.make_status_error(
        status=422,
        headers=_headers(),
        body=msgspec.json.encode({"detail": detail}),
        method="GET",
        url_path="/p",
        now=0.0,
    )
    assert isinstance(err, UnprocessableEntityError)
    assert err.detail == detail
    assert str(err) == "GET /p -> 422: query.limit: must be <= 1000; query.status: bad enum"
    assert err.request_id is None


@pytest.mark.parametrize(
    ("body", "detail", "tail"),
    [
        (b"", None, "(empty body)"),
        (b"<html>Bad Gateway</html>", None, "<html>Bad Gateway</html>"),
        (b'{"error": "x"}', None, '{"error": "x"}'),
        (b'["a"]', None, '["a"]'),
        (b'{"detail": {"code": 7}}', {"code": 7}, '{"detail": {"code": 7}}'),
        (b'{"detail": [1, 2]}', [1, 2], '{"detail": [1, 2]}'),
    ],
)
def test_make_status_error_unusual_bodies(body: bytes, detail: Any, tail: str) -> None:
    err = proto.make_status_error(
        status=502, headers=_headers(), body=body, method="POST", url_path="/p", now=0.0
    )
    assert err.detail == detail
    assert str(err) == f"POST /p -> 502: {tail}"


def test_make_status_error_request_id_fallback_header() -> None:
    err = proto.make_status_error(
        status=500,
        headers=_headers(request_id="r-2"),
        body=b"",
        method="GET",
        url_path="/p",
        now=0.0,
    )
    assert err.request_id == "r-2"


def test_rate_limit_error_carries_retry_after() -> None:
    err = proto.make_status_error(
        status=429,
        headers=_headers(retry_after="7"),
        body=b'{"detail":"slow down"}',
        method="GET",
        url_path="/p",
        now=0.0,
    )
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 7.0
    assert str(err) == "GET /p -> 429: slow down (retry after 7s)"

    bare = proto.make_status_error(
        status=429, headers=_headers(), body=b"", method="GET", url_path="/p", now=0.0
    )
    assert isinstance(bare, RateLimitError)
    assert bare.retry_after is None
    assert str(bare) == "GET /p -> 429: (empty body)"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_error_says_not_followed(status: int) -> None:
    err = proto.make_status_error(
        status=status,
        headers=_headers(location="https://evil.example/steal"),
        body=b"",
        method="GET",
        url_path="/p",
        now=0.0,
    )
    assert type(err) is APIStatusError
    assert err.status_code == status
    assert str(err) == (
        f"GET /p -> {status} redirect to 'https://evil.example/steal' not followed "
        "(the API key is never sent to another location)"
    )


# --- the error tree ------------------------------------------------------------------


def test_error_hierarchy() -> None:
    from aiobatch import _errors as e

    assert issubclass(e.ConfigurationError, ValueError)
    assert issubclass(e.ClientClosedError, RuntimeError)
    assert issubclass(e.APITimeoutError, e.APIConnectionError)
    assert issubclass(e.TLSVerificationError, e.APIConnectionError)
    assert issubclass(e.PageFetchError, e.PaginationError)
    for cls in (
        e.APIConnectionError,
        e.APIStatusError,
        e.ResponseDecodeError,
        e.ResponseTooLargeError,
        e.PaginationError,
        e.ConfigurationError,
        e.ClientClosedError,
    ):
        assert issubclass(cls, e.AiobatchError)
    assert e.status_error_class(404) is e.NotFoundError
    assert e.status_error_class(451) is e.APIStatusError
    assert e.status_error_class(503) is e.InternalServerError


def test_pagination_errors_carry_offset_and_cause() -> None:
    from aiobatch import _errors as e

    inner = e.APIConnectionError("reset")
    err = e.PageFetchError("page at 200 failed", offset=200, error=inner)
    assert err.offset == 200
    assert err.error is inner
    assert str(err) == "page at 200 failed"
    assert e.PaginationError("drift", offset=5).offset == 5


def test_status_error_defaults() -> None:
    err = APIStatusError("x", status_code=418, detail=None, method="GET", path="/")
    assert dict(err.headers) == {}
    assert err.request_id is None


def test_a_json_escaped_key_outside_detail_is_masked_too() -> None:
    from aiobatch._protocol import make_status_error

    key = "llx-SECRET0123456789"
    escaped = key.replace("-", "\\u002d")
    body = b'{"error": "bad key ' + escaped.encode() + b'"}'
    err = make_status_error(
        status=401,
        headers={},
        body=body,
        method="GET",
        url_path="/x",
        now=0.0,
        secret=key.encode(),
    )
    assert key not in str(err)
    assert escaped not in str(err)
    assert "<redacted>" in str(err)


# --- Headers ----------------------------------------------------------------------


def test_headers_are_a_case_insensitive_read_only_mapping() -> None:
    h = proto.Headers([("Retry-After", "5"), ("X-Request-ID", "r1"), ("retry-after", "9")])
    assert isinstance(h, Mapping)
    assert h["retry-after"] == h["RETRY-AFTER"] == "5"  # the first line wins a lookup
    assert h.get("x-request-id") == "r1"
    assert h.get("missing") is None
    assert "x-REQUEST-id" in h
    assert object() not in h
    assert list(h) == ["Retry-After", "X-Request-ID"]  # each name once, as first spelt
    assert len(h) == 2
    assert dict(h) == {"Retry-After": "5", "X-Request-ID": "r1"}
    assert h.getall("RETRY-after") == ["5", "9"]  # repeated lines are all kept
    assert h.getall("nope") == []
    assert h.multi_items() == [("Retry-After", "5"), ("X-Request-ID", "r1"), ("retry-after", "9")]
    assert not hasattr(h, "__setitem__")
    with pytest.raises(AttributeError):
        h.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        h[1]  # type: ignore[index]
    assert "Retry-After" in repr(h)


def test_headers_copy_every_line_and_hold_plain_strs() -> None:
    class Istr(str):
        pass

    h = proto.Headers([(Istr("A"), "1"), ("a", "2")])
    assert proto.Headers(h).multi_items() == [("A", "1"), ("a", "2")]
    assert all(type(k) is str for k in h)
    assert proto.Headers({"B": "2"})["b"] == "2"
    assert dict(proto.Headers()) == {}


# --- decipher ---------------------------------------------------------------------

KEY = "llx-SECRET0123456789"
ITEMS = b'{"items":[{"item_id":"i1","item_name":"a.pdf","status":"failed"}],"total_size":1}'
NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def _decipher(
    status: int,
    body: bytes,
    *,
    framed: bool = True,
    headers: Mapping[str, str] | None = None,
    secret: str = KEY,
) -> Any:
    return proto.decipher(
        BatchItemListResponse,
        status=status,
        headers=headers if headers is not None else {},
        body=body,
        framed=framed,
        method="GET",
        path="/api/x",
        now=NOW,
        secret=secret.encode(),
    )


@pytest.mark.parametrize("status", [200, 201, 204, 299])
@pytest.mark.parametrize("framed", [True, False])
def test_decipher_a_2xx_decodes_into_the_model(status: int, framed: bool) -> None:
    page = _decipher(status, ITEMS, framed=framed, headers={"X-Request-Id": "r"})
    assert type(page) is BatchItemListResponse
    assert [i.item_id for i in page.items] == ["i1"]
    assert page.items[0].status is ItemStatus.FAILED


@pytest.mark.parametrize(
    ("body", "framed", "raised", "says"),
    [
        # a framed body arrived whole: what it holds is the server's fault
        (b"<html>oops</html>", True, ResponseDecodeError, "is not valid JSON"),
        (b'{"total_size":"many"}', True, ResponseDecodeError, "does not match"),
        (ITEMS[:40], True, ResponseDecodeError, "is not valid JSON"),
        (b"", True, ResponseDecodeError, "is not valid JSON"),
        # unframed: it ran to EOF, so a body that does not decode was cut short
        (ITEMS[:40], False, APIConnectionError, "connection closed mid-body (40 bytes"),
        (b"", False, APIConnectionError, "connection closed mid-body (0 bytes"),
        (b'{"total_size":"many"}', False, APIConnectionError, "connection closed mid-body"),
    ],
)
def test_decipher_a_2xx_that_does_not_decode(
    body: bytes, framed: bool, raised: type[Exception], says: str
) -> None:
    with pytest.raises(raised, match=r"^GET /api/x: ") as info:
        _decipher(200, body, framed=framed)
    err = info.value
    assert type(err) is raised
    assert says in str(err)
    assert (err.method, err.path) == ("GET", "/api/x")  # type: ignore[attr-defined]
    if raised is APIConnectionError:
        assert isinstance(err.__cause__, ResponseDecodeError)
        assert err.request_sent  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (100, APIStatusError),
        (199, APIStatusError),
        (304, APIStatusError),
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (418, APIStatusError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
        (599, InternalServerError),
    ],
)
@pytest.mark.parametrize("framed", [True, False])
def test_decipher_any_other_status_raises_its_error(
    status: int, cls: type[APIStatusError], framed: bool
) -> None:
    with pytest.raises(APIStatusError) as info:
        _decipher(status, b'{"detail": "nope"}', framed=framed, headers={"x-request-id": "r9"})
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.method, err.path, err.request_id) == (
        status,
        "GET",
        "/api/x",
        "r9",
    )
    if not 300 <= status < 400:
        assert err.detail == "nope"
        assert str(err) == f"GET /api/x -> {status}: nope"


@pytest.mark.parametrize("body", [b"<html>502</html>", b"", b'{"detail": ', ITEMS])
def test_decipher_an_error_body_that_is_not_an_error_document_is_still_a_status_error(
    body: bytes,
) -> None:
    with pytest.raises(InternalServerError) as info:
        _decipher(502, body, framed=False)
    assert info.value.detail is None


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({}, None),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"RETRY-AFTER-MS": "1500"}, 1.5),
        ({"Retry-After": "9", "retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "Wed, 01 Jan 2030 12:00:10 GMT"}, 10.0),  # measured from ``now``
        ({"Retry-After": "Wed, 01 Jan 2030 11:00:00 GMT"}, 0.0),  # in the past: now
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "nan"}, None),
        (proto.Headers([("Retry-After", "4"), ("Retry-After", "60")]), 4.0),
    ],
)
def test_decipher_a_429_reads_retry_after(
    headers: Mapping[str, str], retry_after: float | None
) -> None:
    with pytest.raises(RateLimitError) as info:
        _decipher(429, b'{"detail":"slow down"}', headers=headers)
    assert info.value.retry_after == retry_after
    tail = "" if retry_after is None else f" (retry after {retry_after:g}s)"
    assert str(info.value) == f"GET /api/x -> 429: slow down{tail}"


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (401, f'{{"detail": "invalid key {KEY}"}}'.encode(), {}),
        (401, b'{"detail": ["' + KEY.replace("-", "\\u002d").encode() + b'"]}', {}),
        (403, f"<html>no access for {KEY}</html>".encode(), {}),
        (401, b"{}", {"WWW-Authenticate": f'Bearer error="invalid", key="{KEY}"'}),
        (302, b"", {"Location": f"https://evil.test/?k={KEY}"}),
        (500, b"{}", {f"x-echo-{KEY}": "1", "X-Echo": KEY}),
    ],
)
def test_decipher_never_lets_the_key_out(status: int, body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(APIStatusError) as info:
        _decipher(status, body, headers=headers)
    err = info.value
    seen = [str(err), repr(err.detail), repr(err.headers), *err.headers, *err.headers.values()]
    assert not [s for s in seen if KEY in s]
    assert "<redacted>" in " ".join(seen)


def test_decipher_a_2xx_that_echoes_the_key_is_scrubbed_in_the_decode_error() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        _decipher(200, f"<html>hello {KEY}</html>".encode())
    assert KEY not in str(info.value)
    assert KEY not in info.value.snippet
    assert "<redacted>" in info.value.snippet


def test_decipher_error_headers_are_a_plain_mapping_with_every_line() -> None:
    headers = proto.Headers([("X-Request-Id", "r1"), ("Via", "a"), ("via", "b")])
    with pytest.raises(APIStatusError) as info:
        _decipher(500, b"", headers=headers)
    err_headers = info.value.headers
    assert type(err_headers) is proto.Headers
    assert err_headers["x-request-id"] == "r1"
    assert err_headers.getall("VIA") == ["a", "b"]
    # a plain dict (a fake transport) is accepted and made case-insensitive
    with pytest.raises(APIStatusError) as info:
        _decipher(404, b"", headers={"X-Request-Id": "r2"}, secret="")
    assert type(info.value.headers) is proto.Headers
    assert info.value.headers["x-request-id"] == "r2"
    assert info.value.request_id == "r2"


def test_decipher_is_pure_the_same_response_gives_the_same_answer() -> None:
    a = _decipher(200, ITEMS)
    b = _decipher(200, ITEMS)
    assert a == b
    assert a is not b
    errors = []
    for _ in range(2):
        with pytest.raises(RateLimitError) as info:
            _decipher(429, b"{}", headers={"Retry-After": "Wed, 01 Jan 2030 12:00:30 GMT"})
        errors.append(info.value.retry_after)
    assert errors == [30.0, 30.0]

"""Request validation that answers like FastAPI would (the real API is FastAPI):
422 with ``{"detail": [{"type", "loc", "msg", "input", "ctx"?}, ...]}``, all
errors of a request at once."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from multidict import MultiDict, MultiMapping

__all__ = ["ApiError", "Errors", "create_body", "page_token"]

_INT = re.compile(r"[+-]?\d+")


class ApiError(Exception):
    """Becomes ``{"detail": detail}`` with ``status``."""

    def __init__(self, status: int, detail: Any, headers: Mapping[str, str] | None = None):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def _expected(allowed: Sequence[str]) -> str:
    quoted = [f"'{a}'" for a in allowed]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


class Errors:
    """Collects validation errors of one request."""

    def __init__(self, query: MultiMapping[str]) -> None:
        self.query = query
        self.items: list[dict[str, Any]] = []

    def _raw(self, name: str) -> str | None:
        values = self.query.getall(name, [])
        return values[-1] if values else None  # FastAPI keeps the last repeat

    def add(self, kind: str, loc: list[str | int], msg: str, value: Any, **ctx: Any) -> None:
        error: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
        if ctx:
            error["ctx"] = ctx
        self.items.append(error)

    def integer(
        self, name: str, default: int | None, *, ge: int, le: int | None = None
    ) -> int | None:
        raw = self._raw(name)
        if raw is None:
            return default
        loc: list[str | int] = ["query", name]
        if not _INT.fullmatch(raw.strip()):
            msg = "Input should be a valid integer, unable to parse string as an integer"
            self.add("int_parsing", loc, msg, raw)
            return default
        value = int(raw)
        if value < ge:
            self.add(
                "greater_than_equal",
                loc,
                f"Input should be greater than or equal to {ge}",
                raw,
                ge=ge,
            )
        elif le is not None and value > le:
            self.add(
                "less_than_equal", loc, f"Input should be less than or equal to {le}", raw, le=le
            )
        return value

    def choice(self, name: str, allowed: Sequence[str]) -> str | None:
        raw = self._raw(name)
        if raw is None or raw in allowed:
            return raw
        expected = _expected(allowed)
        self.add("enum", ["query", name], f"Input should be {expected}", raw, expected=expected)
        return None

    def page_token(self) -> int | None:
        """The offset inside a ``page_token`` (our tokens are base64 ``offset:N``)."""
        raw = self._raw("page_token")
        if raw is None:
            return None
        try:
            text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
            kind, _, number = text.partition(":")
            if kind == "offset" and number.isdigit():
                return int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
        self.add("value_error", ["query", "page_token"], "Value error, invalid page token", raw)
        return None

    def raise_if_any(self) -> None:
        if self.items:
            raise ApiError(422, self.items)


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


_JOB_TYPES = ("parse", "extract", "classify")


def _check_config(errors: Errors, config: dict[str, Any]) -> None:
    """A configuration the API could not run: empty, an unknown job type, or
    ``parameters`` that are not an object."""
    # No field of job_config is required by the schema: ``{}`` is valid.
    loc: list[str | int] = ["body", "job_config"]
    for name in ("type", "job_type"):
        value = config.get(name)
        if value is not None and value not in _JOB_TYPES:
            expected = _expected(_JOB_TYPES)
            msg = f"Input should be {expected}"
            errors.add("enum", [*loc, name], msg, value, expected=expected)
    params = config.get("parameters")
    if params is not None and not isinstance(params, dict):
        msg = "Input should be a valid dictionary"
        errors.add("dict_type", [*loc, "parameters"], msg, params)


def create_body(body: Any) -> dict[str, Any]:
    """Check a ``POST /batch-processing`` body; 422 the way FastAPI would."""
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        raise ApiError(
            422, [{"type": "model_attributes_type", "loc": ["body"], "msg": msg, "input": body}]
        )
    errors = Errors(MultiDict())
    config = body.get("job_config")
    if "job_config" not in body:
        errors.add("missing", ["body", "job_config"], "Field required", None)
    elif not isinstance(config, dict):
        errors.add(
            "dict_type", ["body", "job_config"], "Input should be a valid dictionary", config
        )
    else:
        _check_config(errors, config)
    directory_id, item_ids = body.get("directory_id"), body.get("item_ids")
    if directory_id is not None and not isinstance(directory_id, str):
        errors.add(
            "string_type", ["body", "directory_id"], "Input should be a valid string", directory_id
        )
    if item_ids is not None:
        if not isinstance(item_ids, list):
            errors.add("list_type", ["body", "item_ids"], "Input should be a valid list", item_ids)
        else:
            for k, v in enumerate(item_ids):
                if not isinstance(v, str):
                    errors.add(
                        "string_type", ["body", "item_ids", k], "Input should be a valid string", v
                    )
    for name in ("page_size", "continue_as_new_threshold"):
        v = body.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            errors.add("int_type", ["body", name], "Input should be a valid integer", v)
        elif name == "page_size" and v is not None and not 1 <= v <= 1000:
            kind, msg, ctx = (
                ("greater_than_equal", "greater than or equal to 1", {"ge": 1})
                if v < 1
                else ("less_than_equal", "less than or equal to 1000", {"le": 1000})
            )
            errors.add(kind, ["body", name], f"Input should be {msg}", v, **ctx)
    # Both at once: what the API does is not published, so it is accepted
    # (item_ids win); neither is refused, as the API documents.
    if not errors.items and directory_id is None and item_ids is None:
        msg = "Value error, one of directory_id or item_ids must be provided"
        errors.add("value_error", ["body"], msg, None, error={})
    if not errors.items and item_ids is not None and not item_ids:
        errors.add("too_short", ["body", "item_ids"], "List should have at least 1 item", [])
    errors.raise_if_any()
    return body

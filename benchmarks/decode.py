"""Decoding one page of N items: aiobatch vs the floor, pydantic v2 and the SDK.

Every candidate decodes the same bytes, is checked once (item count, first and
last id) and is timed in interleaved rounds with the garbage collector on (as
in real use) but collected before each sample.  Only the decode is timed; the
SDK's response object is built beforehand (see ``_sdk.response_parser``).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
import orjson
import pydantic

from aiobatch import models

from ._bodies import BENCH_JOB, expected_id, page_body
from ._timing import Rounds, rotate

__all__ = ["CANDIDATES", "Candidate", "PydItemList", "run_decode"]


# --- pydantic v2 models equivalent to aiobatch.models ---------------------------


class PydItem(pydantic.BaseModel):
    item_id: str
    item_name: str
    status: Literal["pending", "processing", "completed", "failed", "skipped", "cancelled"]
    completed_at: datetime | None = None
    effective_at: datetime | None = None
    error_message: str | None = None
    job_id: str | None = None
    job_record_id: str | None = None
    skip_reason: str | None = None
    started_at: datetime | None = None


class PydItemList(pydantic.BaseModel):
    items: list[PydItem] | None = None
    next_page_token: str | None = None
    total_size: int | None = None


# --- candidates -----------------------------------------------------------------

Ids = tuple[int, str, str]  # (items, first id, last id)


def _struct_ids(page: Any) -> Ids:
    items = page.items
    return len(items), items[0].item_id, items[-1].item_id


def _dict_ids(page: Any) -> Ids:
    items = page["items"]
    return len(items), items[0]["item_id"], items[-1]["item_id"]


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    label: str
    #: Called outside the timed region; returns the zero-argument call to time.
    prepare: Callable[[bytes, int], Callable[[], Any]]
    ids: Callable[[Any], Ids]
    #: Part of the comparison (False: shown for context only).
    kind: Literal["subject", "floor", "baseline", "context"] = "baseline"


def _aiobatch(body: bytes, n: int) -> Callable[[], Any]:
    # What BatchClient does with every page (aiobatch._protocol.decode_body).
    return lambda: models.decode(models.BatchItemListResponse, body)


def _sdk(body: bytes, n: int) -> Callable[[], Any]:
    from . import _sdk

    return _sdk.response_parser(_sdk_client(), body, n)


_client: list[Any] = []


def _sdk_client() -> Any:
    if not _client:
        from . import _sdk

        _client.append(_sdk.make_client("http://sdk.invalid", "bench-key", "httpx"))
    return _client[0]


CANDIDATES: tuple[Candidate, ...] = (
    Candidate(
        "aiobatch",
        "aiobatch models.decode",
        _aiobatch,
        _struct_ids,
        "subject",
    ),
    Candidate(
        "msgspec",
        "msgspec.json.decode (built-ins)",
        lambda b, n: lambda: msgspec.json.decode(b),
        _dict_ids,
        "floor",
    ),
    Candidate("orjson", "orjson.loads", lambda b, n: lambda: orjson.loads(b), _dict_ids, "floor"),
    Candidate(
        "pydantic",
        "pydantic v2 model_validate_json",
        lambda b, n: lambda: PydItemList.model_validate_json(b),
        _struct_ids,
    ),
    Candidate("sdk", "llama-cloud 2.13 SDK parse path", _sdk, _struct_ids),
    Candidate(
        "json", "stdlib json.loads", lambda b, n: lambda: json.loads(b), _dict_ids, "context"
    ),
)


def _available(names: Sequence[str] | None) -> list[Candidate]:
    out = [c for c in CANDIDATES if names is None or c.name in names]
    try:
        import llama_cloud  # noqa: F401
    except ImportError:
        out = [c for c in out if c.name != "sdk"]
    return out


def _time_once(cand: Candidate, body: bytes, n: int) -> tuple[float, Any]:
    call = cand.prepare(body, n)
    gc.collect()
    t0 = time.perf_counter()
    result = call()
    return time.perf_counter() - t0, result


def run_decode(
    sizes: Sequence[int],
    *,
    rounds: int = 7,
    budget_s: float = 8.0,
    min_samples: int = 2,
    candidates: Sequence[str] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Time every candidate on a page of each size; JSON-ready results."""
    cands = _available(candidates)
    want = expected_id(BENCH_JOB)
    warm = page_body(min(sizes))
    for cand in cands:  # warm-up: imports, caches, first-call costs
        _time_once(cand, warm, min(sizes))
    results: list[dict[str, Any]] = []
    by_name = {c.name: c for c in cands}
    names = [c.name for c in cands]
    for size in sizes:
        body = page_body(size)
        expected = (size, want(0), want(size - 1))
        sched: Rounds[str] = Rounds(
            lambda r: rotate(names, r), rounds=rounds, budget_s=budget_s, min_samples=min_samples
        )
        checks: dict[str, bool] = {}
        for name in sched:
            cand = by_name[name]
            seconds, result = _time_once(cand, body, size)
            if name not in checks:
                checks[name] = cand.ids(result) == expected
            del result
            sched.record(name, seconds)
        rows: dict[str, Any] = {}
        for cand in cands:
            s = sched.series[cand.name]
            rows[cand.name] = {
                "label": cand.label,
                "kind": cand.kind,
                "correct": checks[cand.name],
                **s.summary(),
                "items_per_s": size / s.best,
                "mb_per_s": len(body) / s.best / 1e6,
            }
        results.append({"items": size, "bytes": len(body), "candidates": rows})
        log(
            f"decode {size:>7,} items: "
            + ", ".join(f"{k} {v['items_per_s']:,.0f}/s" for k, v in rows.items())
        )
    return {"sizes": list(sizes), "rounds": rounds, "budget_s": budget_s, "results": results}

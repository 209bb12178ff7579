"""Wire models: the reference examples decode, statuses stay open, encode round-trips."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from aiobatch import models
from aiobatch.models import (
    BatchItem,
    BatchItemListResponse,
    BatchJob,
    BatchJobList,
    BatchJobStatus,
    CancelResponse,
    ItemStatus,
    JobStatus,
    JobType,
    ProcessingResult,
    ProcessingResults,
)

TS = "2019-12-27T18:11:19.117Z"
TS_DT = datetime(2019, 12, 27, 18, 11, 19, 117000, tzinfo=UTC)

# The "Returns Examples" block of the List Batch Job Items reference, verbatim.
ITEMS_EXAMPLE = b"""{
  "items": [
    {
      "item_id": "item_id",
      "item_name": "item_name",
      "status": "pending",
      "completed_at": "2019-12-27T18:11:19.117Z",
      "effective_at": "2019-12-27T18:11:19.117Z",
      "error_message": "error_message",
      "job_id": "job_id",
      "job_record_id": "job_record_id",
      "skip_reason": "skip_reason",
      "started_at": "2019-12-27T18:11:19.117Z"
    }
  ],
  "next_page_token": "next_page_token",
  "total_size": 0
}"""

JOB_WIRE: dict[str, Any] = {
    "id": "bjb-1",
    "job_type": "parse",
    "project_id": "prj-1",
    "status": "running",
    "total_items": 10,
    "completed_at": TS,
    "created_at": TS,
    "directory_id": "dir-1",
    "effective_at": TS,
    "error_message": "boom",
    "failed_items": 1,
    "job_record_id": "rec-1",
    "processed_items": 5,
    "skipped_items": 2,
    "started_at": TS,
    "updated_at": TS,
    "workflow_id": "wf-1",
}

RESULT_WIRE: dict[str, Any] = {
    "item_id": "itm-1",
    "job_config": {"parse_mode": "fast", "nested": {"a": [1, 2, None]}},
    "job_type": "extract",
    "output_s3_path": "s3://bucket/out.json",
    "parameters_hash": "abc123",
    "processed_at": TS,
    "result_id": "res-1",
    "output_metadata": {"pages": 3},
}


@pytest.fixture
def fresh_item_status() -> Iterator[None]:
    """Run with an empty unknown-value cache on ItemStatus, and restore it after."""
    saved_map = dict(ItemStatus._value2member_map_)
    saved_count = ItemStatus.__dict__.get("_unknown_count")
    for value in [v for v in saved_map if v not in {m.value for m in ItemStatus}]:
        del ItemStatus._value2member_map_[value]
    type.__setattr__(ItemStatus, "_unknown_count", 0)
    yield
    ItemStatus._value2member_map_.clear()
    ItemStatus._value2member_map_.update(saved_map)
    type.__setattr__(ItemStatus, "_unknown_count", saved_count or 0)


def _json(obj: object) -> bytes:
    return msgspec.json.encode(obj)


# --- the reference examples ---------------------------------------------------


def test_item_list_reference_example_decodes_every_field() -> None:
    page = models.decode(BatchItemListResponse, ITEMS_EXAMPLE)
    assert page.next_page_token == "next_page_token"
    assert page.total_size == 0
    assert page.items == [
        BatchItem(
            item_id="item_id",
            item_name="item_name",
            status=ItemStatus.PENDING,
            completed_at=TS_DT,
            effective_at=TS_DT,
            error_message="error_message",
            job_id="job_id",
            job_record_id="job_record_id",
            skip_reason="skip_reason",
            started_at=TS_DT,
        )
    ]


def test_timestamps_are_aware_datetimes() -> None:
    item = models.decode(BatchItemListResponse, ITEMS_EXAMPLE).items[0]
    for ts in (item.completed_at, item.effective_at, item.started_at):
        assert isinstance(ts, datetime)
        assert ts.tzinfo is not None
        assert ts.utcoffset() == timedelta(0)
        assert ts == TS_DT


def test_timestamp_offset_is_kept() -> None:
    raw = _json(
        {
            "item_id": "a",
            "item_name": "n",
            "status": "failed",
            "started_at": "2024-05-01T12:00:00+02:00",
        }
    )
    item = models.decode(BatchItem, raw)
    assert item.started_at is not None
    assert item.started_at.utcoffset() == timedelta(hours=2)
    assert item.started_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_minimal_item_has_none_optionals() -> None:
    item = models.decode(BatchItem, b'{"item_id":"i","item_name":"n","status":"completed"}')
    assert item == BatchItem(item_id="i", item_name="n", status=ItemStatus.COMPLETED)
    assert item.completed_at is None
    assert item.skip_reason is None


def test_batch_job_decodes_every_field() -> None:
    job = models.decode(BatchJob, _json(JOB_WIRE))
    assert job == BatchJob(
        id="bjb-1",
        job_type=JobType.PARSE,
        project_id="prj-1",
        status=JobStatus.RUNNING,
        total_items=10,
        completed_at=TS_DT,
        created_at=TS_DT,
        directory_id="dir-1",
        effective_at=TS_DT,
        error_message="boom",
        failed_items=1,
        job_record_id="rec-1",
        processed_items=5,
        skipped_items=2,
        started_at=TS_DT,
        updated_at=TS_DT,
        workflow_id="wf-1",
    )


def test_job_list_and_status_and_cancel_decode() -> None:
    minimal_job = {
        k: JOB_WIRE[k] for k in ("id", "job_type", "project_id", "status", "total_items")
    }
    jobs = models.decode(
        BatchJobList, _json({"items": [minimal_job], "next_page_token": "t", "total_size": 7})
    )
    assert jobs.total_size == 7
    assert jobs.next_page_token == "t"
    assert jobs.items == [
        BatchJob(
            id="bjb-1",
            job_type=JobType.PARSE,
            project_id="prj-1",
            status=JobStatus.RUNNING,
            total_items=10,
        )
    ]

    status = models.decode(BatchJobStatus, _json({"job": JOB_WIRE, "progress_percentage": 42.5}))
    assert status.progress_percentage == 42.5
    assert status.job.id == "bjb-1"
    assert status.job.status is JobStatus.RUNNING

    cancel = models.decode(
        CancelResponse,
        b'{"job_id":"bjb-1","message":"cancelled","processed_items":3,"status":"cancelled"}',
    )
    assert cancel == CancelResponse(
        job_id="bjb-1", message="cancelled", processed_items=3, status=JobStatus.CANCELLED
    )


def test_processing_results_decode_with_loose_job_config() -> None:
    res = models.decode(
        ProcessingResults,
        _json({"item_id": "itm-1", "item_name": "a.pdf", "processing_results": [RESULT_WIRE]}),
    )
    assert res.item_id == "itm-1"
    assert res.item_name == "a.pdf"
    assert res.processing_results == [
        ProcessingResult(
            item_id="itm-1",
            job_config={"parse_mode": "fast", "nested": {"a": [1, 2, None]}},
            job_type=JobType.EXTRACT,
            output_s3_path="s3://bucket/out.json",
            parameters_hash="abc123",
            processed_at=TS_DT,
            result_id="res-1",
            output_metadata={"pages": 3},
        )
    ]


# --- robustness -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "body"),
    [
        (BatchItemListResponse, b'{"items": null, "total_size": 3}'),
        (BatchItemListResponse, b'{"total_size": 3}'),
        (BatchJobList, b'{"items": null, "total_size": 3}'),
        (BatchJobList, b'{"total_size": 3}'),
    ],
)
def test_null_or_missing_items_become_empty_list(tp: type[Any], body: bytes) -> None:
    page = models.decode(tp, body)
    assert page.items == []
    assert page.total_size == 3
    assert page.next_page_token is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"item_id":"i","item_name":"n"}',
        b'{"item_id":"i","item_name":"n","processing_results":null}',
    ],
)
def test_null_or_missing_processing_results_become_empty_list(body: bytes) -> None:
    assert models.decode(ProcessingResults, body).processing_results == []


@pytest.mark.parametrize(
    ("tp", "body", "field"),
    [
        (BatchItemListResponse, b'{"items": null, "next_page_token": "t"}', "items"),
        (BatchJobList, b'{"next_page_token": "t", "items": null}', "items"),
        (
            ProcessingResults,
            b'{"processing_results": null, "item_id": "i", "item_name": "n"}',
            "processing_results",
        ),
    ],
)
def test_a_null_list_decodes_to_the_public_type_itself(
    tp: type[Any], body: bytes, field: str
) -> None:
    """No private wire type escapes: the result is the public Struct, its list a
    fresh ``[]`` per page, and it equals the page built by hand."""
    first, second = models.decode(tp, body), models.decode(tp, body)
    assert type(first) is tp
    assert getattr(first, field) == []
    assert getattr(first, field) is not getattr(second, field)
    assert first == tp(**msgspec.structs.asdict(first))


def test_public_list_fields_stay_plain_lists() -> None:
    types = {f.name: f.type for f in msgspec.structs.fields(BatchItemListResponse)}
    assert types["items"] == list[BatchItem]
    assert {f.name: f.type for f in msgspec.structs.fields(BatchJobList)}["items"] == list[BatchJob]
    results = {f.name: f.type for f in msgspec.structs.fields(ProcessingResults)}
    assert results["processing_results"] == list[ProcessingResult]


def test_the_null_list_rule_covers_any_model_with_a_defaulted_list() -> None:
    """One mechanism, derived from the fields: a new model needs no wire twin."""

    class Page(msgspec.Struct, kw_only=True):
        cursor: str
        rows: list[BatchItem] = msgspec.field(default_factory=list)
        tags: list[str] = msgspec.field(default_factory=list, name="labels")
        size: int = 7

    assert models.decode(Page, b'{"cursor": "c", "rows": null, "labels": null}') == Page(cursor="c")
    assert models.decode(Page, b'{"cursor": "c", "labels": ["x"]}') == Page(cursor="c", tags=["x"])
    with pytest.raises(msgspec.ValidationError, match="cursor"):
        models.decode(Page, b'{"rows": null}')


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"items": null, "total_size": "3"}', r"\$\.total_size"),
        (b'{"total_size": "3", "items": null}', r"\$\.total_size"),
        (b'{"items": {"a": 1}}', r"\$\.items"),
        (b'{"items": [null]}', r"\$\.items\[0\]"),
    ],
)
def test_a_body_that_is_really_wrong_still_names_the_field(body: bytes, where: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=where):
        models.decode(BatchItemListResponse, body)


def test_unknown_fields_are_ignored_at_every_level() -> None:
    body = _json(
        {
            "brand_new": {"deep": [1, 2]},
            "items": [
                {"item_id": "i", "item_name": "n", "status": "failed", "new_field": 1, "score": 0.5}
            ],
            "total_size": 1,
        }
    )
    page = models.decode(BatchItemListResponse, body)
    assert page.items == [BatchItem(item_id="i", item_name="n", status=ItemStatus.FAILED)]
    job = models.decode(BatchJob, _json({**JOB_WIRE, "priority": "high"}))
    assert job.id == "bjb-1"


def test_unknown_item_status_decodes_to_open_pseudo_member() -> None:
    body = b'{"items":[{"item_id":"i","item_name":"n","status":"quarantined"}]}'
    status = models.decode(BatchItemListResponse, body).items[0].status
    assert isinstance(status, ItemStatus)
    assert status.known is False
    assert status == "quarantined"
    assert str(status) == "quarantined"
    assert status.value == "quarantined"
    assert status not in list(ItemStatus)  # iteration lists documented members only
    assert hash(status) == hash("quarantined")
    assert models.encode(status) == b'"quarantined"'
    # the same unknown value decodes to the same pseudo-member later
    again = models.decode(BatchItem, b'{"item_id":"j","item_name":"m","status":"quarantined"}')
    assert again.status is status


def test_unknown_job_status_and_type_decode() -> None:
    job = models.decode(BatchJob, _json({**JOB_WIRE, "status": "paused", "job_type": "translate"}))
    assert job.status == "paused"
    assert job.status.known is False
    assert job.status.terminal is False
    assert job.job_type == "translate"
    assert job.job_type.known is False


def test_known_members_behave_like_strings() -> None:
    failed: str = "failed"
    assert ItemStatus.FAILED.known is True
    assert failed == ItemStatus.FAILED
    assert ItemStatus("failed") is ItemStatus.FAILED
    assert {"failed": 1}[ItemStatus.FAILED] == 1
    assert [s.value for s in ItemStatus] == [
        "pending",
        "processing",
        "completed",
        "failed",
        "skipped",
        "cancelled",
    ]
    assert [s.value for s in JobStatus if s.terminal] == ["completed", "failed", "cancelled"]
    assert [s.value for s in JobType] == ["parse", "extract", "classify"]


def test_many_unknown_statuses_decode_and_cache_stays_bounded(fresh_item_status: None) -> None:
    before = len(ItemStatus._value2member_map_)
    values = [f"new-{uuid.uuid4().hex}" for _ in range(200)]
    body = _json({"items": [{"item_id": v, "item_name": v, "status": v} for v in values]})
    page = models.decode(BatchItemListResponse, body)
    assert [i.status for i in page.items] == values
    assert all(i.status.known is False for i in page.items)
    assert len(ItemStatus._value2member_map_) - before == models._MAX_UNKNOWN
    # beyond the cache budget, values still decode (fresh pseudo-members)
    assert (
        models.decode(
            BatchItem, _json({"item_id": "i", "item_name": "n", "status": values[-1]})
        ).status
        == values[-1]
    )


def test_non_string_status_is_a_validation_error() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.items\[0\]\.status"):
        models.decode(
            BatchItemListResponse, b'{"items":[{"item_id":"i","item_name":"n","status":5}]}'
        )


def test_missing_required_field_is_a_validation_error() -> None:
    with pytest.raises(msgspec.ValidationError, match="item_name"):
        models.decode(BatchItem, b'{"item_id":"i","status":"pending"}')


# --- encode ---------------------------------------------------------------------


def test_encode_gives_wire_form_without_none_fields() -> None:
    item = BatchItem(
        item_id="i", item_name="n", status=ItemStatus.SKIPPED, skip_reason="already_processed"
    )
    assert models.encode(item) == (
        b'{"item_id":"i","item_name":"n","status":"skipped","skip_reason":"already_processed"}'
    )
    stamped = BatchItem(item_id="i", item_name="n", status=ItemStatus.COMPLETED, completed_at=TS_DT)
    assert models.encode(stamped) == (
        b'{"item_id":"i","item_name":"n","status":"completed",'
        b'"completed_at":"2019-12-27T18:11:19.117000Z"}'
    )


@pytest.mark.parametrize(
    ("tp", "wire"),
    [
        (BatchItemListResponse, msgspec.json.decode(ITEMS_EXAMPLE)),
        (BatchJob, JOB_WIRE),
        (BatchJobList, {"items": [JOB_WIRE], "next_page_token": "n", "total_size": 1}),
        (BatchJobStatus, {"job": JOB_WIRE, "progress_percentage": 12.5}),
        (
            CancelResponse,
            {"job_id": "j", "message": "m", "processed_items": 0, "status": "cancelled"},
        ),
        (
            ProcessingResults,
            {"item_id": "i", "item_name": "n", "processing_results": [RESULT_WIRE]},
        ),
    ],
)
def test_encode_round_trips_the_wire_form(tp: type[Any], wire: dict[str, Any]) -> None:
    obj = models.decode(tp, _json(wire))
    encoded = models.encode(obj)
    assert models.decode(tp, encoded) == obj
    # Same JSON object as the wire, once timestamps are compared as instants.
    assert _normalise(msgspec.json.decode(encoded)) == _normalise(wire)


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and value[10] == "T":
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def test_encode_keeps_unknown_status_and_offsets() -> None:
    tz = timezone(timedelta(hours=-5))
    item = BatchItem(
        item_id="i",
        item_name="n",
        status=ItemStatus("brand-new"),
        started_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz),
    )
    assert models.encode(item) == (
        b'{"item_id":"i","item_name":"n","status":"brand-new","started_at":"2024-01-02T03:04:05-05:00"}'
    )


def test_repeated_unknown_value_is_cached_once(fresh_item_status: None) -> None:
    value = f"once-{uuid.uuid4().hex}"
    raw = _json({"item_id": "i", "item_name": "n", "status": value})
    statuses = [models.decode(BatchItem, raw).status for _ in range(100)]
    assert ItemStatus.__dict__.get("_unknown_count") == 1
    assert all(s is statuses[0] for s in statuses)
    assert statuses[0] == value
    assert statuses[0].known is False


def test_open_enum_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="5 is not a valid ItemStatus"):
        ItemStatus(5)  # type: ignore[arg-type]

"""v2 Batches models: the wire shapes, open enums, null lists."""

from __future__ import annotations

import msgspec
import pytest

from aiobatch import Batch, BatchJobType, BatchList, BatchStatus
from aiobatch.models import decode, encode

BATCH = (
    b'{"id":"bat-1","config":{"job":{"type":"parse_v2","configuration_id":"cfg-1"}},'
    b'"project_id":"p","source_directory_id":"dir-1","status":"RUNNING",'
    b'"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:06.5Z","results":null}'
)


def test_a_batch_decodes() -> None:
    b = decode(Batch, BATCH)
    assert b.status is BatchStatus.RUNNING
    assert not b.status.terminal
    assert b.config.job.type is BatchJobType.PARSE_V2
    assert b.results is None
    assert b.created_at is not None
    assert b.created_at.tzinfo is not None


def test_results_with_and_without_a_job() -> None:
    body = BATCH.replace(
        b'"results":null',
        b'"results":[{"source_directory_file_id":"f1","job_reference":{"type":"parse","id":"j"}},'
        b'{"source_directory_file_id":"f2","job_reference":null,"error_message":"bad file"}]',
    )
    b = decode(Batch, body)
    assert b.results is not None
    ok, bad = b.results
    assert ok.job_reference is not None
    assert ok.job_reference.id == "j"
    assert bad.job_reference is None
    assert bad.error_message == "bad file"


def test_unknown_statuses_and_job_types_decode_open() -> None:
    body = BATCH.replace(b'"RUNNING"', b'"PAUSED"').replace(b'"parse_v2"', b'"classify_v2"')
    b = decode(Batch, body)
    assert b.status == "PAUSED"
    assert not b.status.known
    assert not b.config.job.type.known
    assert BatchStatus("COMPLETED").terminal


def test_a_list_page_and_its_null_items() -> None:
    page = decode(BatchList, b'{"items":[%s],"next_page_token":"t"}' % BATCH)
    assert [b.id for b in page.items] == ["bat-1"]
    assert page.next_page_token == "t"
    assert decode(BatchList, b'{"items":null,"next_page_token":null}').items == []
    assert decode(BatchList, b"{}").items == []


def test_required_fields_are_required() -> None:
    with pytest.raises(msgspec.ValidationError, match="source_directory_id"):
        decode(Batch, BATCH.replace(b'"source_directory_id":"dir-1",', b""))


def test_encode_round_trips() -> None:
    b = decode(Batch, BATCH)
    assert decode(Batch, encode(b)) == b

"""Conformance with the official SDK 2.19.0: every method over the endpoints
aiobatch uses (``batches`` list/get/create/cancel, ``parsing.get`` with every
``expand`` value, ``extract.get``, ``beta.directories.files.list``), called through
the SDK against the simulator on a real socket with the SDK's strict response
validation on, once plainly and once with every parameter the method takes.

Runs only in the SDK 2.19.0 virtualenv (``make test-sdk``, which ``make test``
calls): the dev virtualenv holds 2.13.0, where this module skips.  Typed loosely
(``Any``): mypy sees 2.13.0's types, which have no ``client.batches``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aiobatch.testing import SimBatch, SimClock, Simulator
from aiobatch.testing._v2content import PARSE_EXPANDS
from aiobatch.testing._v2jobs import job_outcome

pytestmark = pytest.mark.sdk

SDK_VERSION: str | None
try:
    SDK_VERSION = importlib.metadata.version("llama-cloud")
except importlib.metadata.PackageNotFoundError:
    SDK_VERSION = None
if SDK_VERSION != "2.19.0":
    pytest.skip(
        f"needs llama-cloud 2.19.0 (found {SDK_VERSION}): run by `make test-sdk`",
        allow_module_level=True,
    )

T0 = 1_800_000_000.0
ORG = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
PROJECT = "5d3c1f0e-7a51-4c2b-9a8e-3f9b1c2d4e5f"
SCOPE = {"organization_id": ORG, "project_id": PROJECT}
DIRECTORY = "dir-7f3a9c21-sim"
BATCHES = 23


@pytest.fixture
async def sdk() -> AsyncIterator[tuple[Any, Simulator]]:
    from llama_cloud import AsyncLlamaCloud

    async with Simulator(clock=SimClock.frozen_at(T0)) as sim:
        for k in range(BATCHES):
            sim.batches.add(
                SimBatch(batch_id=f"bat-sim-{k:04d}", files=20, created_at=T0 - 3600 + k * 60)
            )
        sim.batches.add(SimBatch(batch_id="bat-x", files=20, job_type="extract_v2"))
        sim.batches.add(SimBatch(batch_id="bat-fast", files=20, tier="fast"))
        sim.advance(600)
        client = AsyncLlamaCloud(
            api_key=sim.api_key,
            base_url=sim.base_url,
            max_retries=0,
            _strict_response_validation=True,
        )
        async with client:
            yield client, sim


async def _completed_job(client: Any, batch_id: str) -> str:
    batch = await client.batches.get(batch_id, expand=["results"])
    return str(
        next(
            r.job_reference.id
            for r in batch.results
            if r.job_reference is not None and job_outcome(r.job_reference.id) == "COMPLETED"
        )
    )


async def test_batches_list(sdk: tuple[Any, Simulator]) -> None:
    client, sim = sdk
    plain = [b.id async for b in client.batches.list()]
    assert plain == sim.batches.ids()
    paged = [b.id async for b in client.batches.list(page_size=5)]
    assert paged == plain
    full = [
        b.id
        async for b in client.batches.list(
            created_at_on_or_after="2027-01-15T07:00:00Z",
            created_at_on_or_before="2027-01-15T08:00:00+00:00",
            page_size=4,
            page_token="",
            source_directory_id=DIRECTORY,
            status="COMPLETED",
            **SCOPE,
        )
    ]
    assert full
    assert set(full) <= set(plain)


async def test_batches_get_create_cancel(sdk: tuple[Any, Simulator]) -> None:
    client, sim = sdk
    plain = await client.batches.get("bat-sim-0000")
    assert plain.results is None
    full = await client.batches.get("bat-sim-0000", expand=["results"], **SCOPE)
    assert full.status == "COMPLETED"
    assert len(full.results) == 20
    config = {"job": {"type": "parse_v2", "configuration_id": "cfg-sdk"}}
    made = await client.batches.create(config=config, source_directory_id="dir-sdk")
    assert made.status == "PENDING"
    every = await client.batches.create(
        config={"job": {"type": "extract_v2", "configuration_id": "cfg-x"}},
        source_directory_id="dir-sdk",
        webhook_configuration_ids=["whc-1"],
        webhook_configurations=[
            {
                "webhook_url": "http://127.0.0.1:9/hook",
                "webhook_events": ["batch.success", "batch.error"],
                "webhook_headers": {"X-Team": "docs"},
                "webhook_output_format": "json",
                "webhook_signing_secret": "whsec_test",
            },
            {"webhook_events": ["batch.cancelled"]},  # webhook_url is optional
        ],
        **SCOPE,
    )
    assert every.project_id == PROJECT
    assert (await client.batches.cancel(made.id)).status == "CANCELLED"
    assert (await client.batches.cancel(every.id, **SCOPE)).status == "CANCELLED"
    # A finished batch: not published, so accepted and unchanged.
    assert (await client.batches.cancel("bat-sim-0000")).status == "COMPLETED"
    assert sim.batches.status(made.id) == "CANCELLED"


@pytest.mark.parametrize("expand", PARSE_EXPANDS)
async def test_parsing_get_every_expand(sdk: tuple[Any, Simulator], expand: str) -> None:
    client, _ = sdk
    job = await _completed_job(client, "bat-sim-0001")
    got = await client.parsing.get(job, expand=[expand])
    assert got.job.status == "COMPLETED"
    if expand.endswith("_content_metadata") and expand != "images_content_metadata":
        assert got.result_content_metadata
    elif expand == "usage":
        assert got.job.usage.credits > 0
    else:
        assert getattr(got, expand) is not None


async def test_parsing_get_with_every_parameter(sdk: tuple[Any, Simulator]) -> None:
    client, sim = sdk
    job = await _completed_job(client, "bat-sim-0002")
    plain = await client.parsing.get(job)
    assert plain.job.id == job
    assert plain.markdown_full is None
    got = await client.parsing.get(
        job, expand=list(PARSE_EXPANDS), image_filenames="image_0.png", **SCOPE
    )
    assert got.markdown_full
    assert got.items.pages[0].success is True
    url = got.result_content_metadata["md"].presigned_url
    assert url.startswith(sim.storage_url)
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200
        assert (await resp.text()) == got.markdown_full
    # A fast-tier job refuses markdown (an error the SDK raises), and gives text.
    fast = await _completed_job(client, "bat-fast")
    from llama_cloud import BadRequestError

    with pytest.raises(BadRequestError, match="FAST tier"):
        await client.parsing.get(fast, expand=["markdown_full"])
    assert (await client.parsing.get(fast, expand=["text_full"])).text_full


async def test_extract_get(sdk: tuple[Any, Simulator]) -> None:
    client, _ = sdk
    job = await _completed_job(client, "bat-x")
    plain = await client.extract.get(job)
    assert plain.file_input.startswith("dfl-")
    assert plain.extract_result
    full = await client.extract.get(
        job, expand=["configuration", "extract_metadata", "usage"], **SCOPE
    )
    assert full.configuration.data_schema
    assert full.usage.credits > 0


async def test_directory_files_list(sdk: tuple[Any, Simulator]) -> None:
    client, _ = sdk
    batch = await client.batches.get("bat-sim-0003", expand=["results"])
    ids = {r.source_directory_file_id for r in batch.results}
    listed = [f async for f in client.beta.directories.files.list(DIRECTORY)]
    assert ids <= {f.id for f in listed}
    assert all(f.display_name for f in listed)
    name = listed[5].display_name
    full = [
        f
        async for f in client.beta.directories.files.list(
            DIRECTORY,
            display_name=name,
            display_name_contains=name[:4],
            expand=["download_url"],
            file_id=listed[5].file_id,
            include_deleted=True,
            page_size=2,
            page_token="",
            unique_id=listed[5].unique_id,
            updated_at_on_or_after="2020-01-01T00:00:00Z",
            updated_at_on_or_before="2100-01-01T00:00:00Z",
            **SCOPE,
        )
    ]
    assert [f.id for f in full] == [listed[5].id]


def _literal(annotation: Any) -> set[str]:
    """The string values of a ``Literal`` inside ``Optional[SequenceNotStr[...]]``."""
    from typing import Literal, get_args, get_origin

    if get_origin(annotation) is Literal:
        return {a for a in get_args(annotation) if isinstance(a, str)}
    return set().union(*(_literal(a) for a in get_args(annotation)))


def test_webhook_events_are_the_sdks_on_both_sides() -> None:
    from typing import get_type_hints

    from llama_cloud.types import batch_create_params

    from aiobatch.testing._batches import WEBHOOK_EVENTS as SIM_EVENTS
    from aiobatch.webhooks import WEBHOOK_EVENTS

    params: Any = batch_create_params  # mypy sees 2.13.0's module, without it
    hints = get_type_hints(params.WebhookConfiguration)
    sdk = _literal(hints["webhook_events"])
    assert "batch.success" in sdk
    assert set(WEBHOOK_EVENTS) == sdk  # the client's builder checks against them
    assert set(SIM_EVENTS) == sdk  # the simulator refuses only what the SDK cannot send


def test_every_expand_the_sdk_names_is_served() -> None:
    import re

    from llama_cloud.types import extract_get_params, parsing_get_params

    def named(module: Any) -> set[str]:
        source = module.__loader__.get_source(module.__name__)
        doc = source.split("expand:", 1)[1].split('"""')[1]
        listing = doc.split(":", 1)[1].split(".", 1)[0]  # "Fields to include: a, b, c."
        return set(re.findall(r"[a-z_]+", listing))

    parse = named(parsing_get_params)
    assert "raw_words_content_metadata" in parse
    assert parse <= set(PARSE_EXPANDS)
    assert named(extract_get_params) == {"configuration", "extract_metadata", "usage"}

# mypy: ignore-errors
# (this runs against llama-cloud 2.19.0; the dev virtualenv holds 2.13.0, whose types differ)
"""Run by ``test_sim_sdk_v2.py`` in a separate virtualenv holding only the official
``llama-cloud`` SDK (2.19.0): it talks HTTP to a simulator in another process and
never imports aiobatch.  Prints one JSON object with what it saw.

    python _sdk_v2_probe.py BASE_URL API_KEY PAGE_SIZE
"""

from __future__ import annotations

import json
import sys

import httpx
import llama_cloud
from llama_cloud import LlamaCloud
from llama_cloud.types import (
    BatchCancelResponse,
    BatchCreateResponse,
    BatchGetResponse,
    BatchListResponse,
)


def main() -> None:
    base_url, api_key, page_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out: dict[str, object] = {"sdk_version": llama_cloud.__version__}
    with LlamaCloud(api_key=api_key, base_url=base_url, max_retries=0) as client:
        # The SDK's own paginator, following next_page_token to the end.
        listed = [b.id for b in client.batches.list(page_size=page_size)]
        out["listed"] = listed
        out["statuses"] = sorted({b.status for b in client.batches.list(page_size=page_size)})
        finished = next(
            b.id for b in client.batches.list(page_size=page_size) if b.status == "COMPLETED"
        )
        got = client.batches.get(finished, expand=["results"])
        out["finished"] = finished
        out["results"] = len(got.results or [])
        created = client.batches.create(
            config={"job": {"type": "parse_v2", "configuration_id": "cfg-sdk"}},
            source_directory_id="dir-sdk",
            webhook_configurations=[
                {"webhook_url": "http://127.0.0.1:9/hook", "webhook_events": ["batch.success"]}
            ],
        )
        cancelled = client.batches.cancel(created.id)
        out["created_status"] = created.status
        out["cancelled_status"] = cancelled.status

    # Strict validation of every raw v2 body (the SDK builds its objects leniently).
    headers = {"Authorization": f"Bearer {api_key}"}
    validated = 0
    with httpx.Client(base_url=base_url, headers=headers) as http:
        token = None
        while True:
            params: dict[str, str | int] = {"page_size": page_size}
            if token:
                params["page_token"] = token
            page = http.get("/api/v2/batches", params=params).raise_for_status().json()
            for item in page["items"]:
                BatchListResponse.model_validate(item)
                one = http.get(f"/api/v2/batches/{item['id']}", params={"expand": "results"})
                BatchGetResponse.model_validate(one.raise_for_status().json())
                validated += 1
            token = page.get("next_page_token")
            if not token:
                break
        body = {
            "config": {"job": {"type": "extract_v2", "configuration_id": "cfg-x"}},
            "source_directory_id": "dir-x",
        }
        made = http.post("/api/v2/batches", json=body).raise_for_status().json()
        BatchCreateResponse.model_validate(made)
        gone = http.post(f"/api/v2/batches/{made['id']}/cancel").raise_for_status().json()
        BatchCancelResponse.model_validate(gone)
        BatchGetResponse.model_validate(
            http.get(f"/api/v2/batches/{made['id']}", params={"expand": "results"}).json()
        )
    out["validated"] = validated
    print(json.dumps(out))


if __name__ == "__main__":
    main()

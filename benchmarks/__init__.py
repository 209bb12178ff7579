"""aiobatch's benchmark suite: ``python -m benchmarks [--quick]`` (``make bench``).

Every claim is a ratio against a baseline measured side by side in the same run
(the machine is small, shared and noisy), never an absolute number:

* ``decode``: one page of 1k / 10k / 100k realistic items, aiobatch's decoder vs
  raw msgspec / orjson (the floor), pydantic v2 and the official SDK's own path;
* ``scan``: a whole simulated job, simulator in its own process, aiobatch vs the
  official SDK (httpx and aiohttp transports) vs a bare aiohttp + msgspec loop;
* ``memory``: peak RSS of a fresh process streaming 1M items.

Results go to ``benchmarks/results/`` (JSON, ``scan.png``, ``summary.md``).
"""

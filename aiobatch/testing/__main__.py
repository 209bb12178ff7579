"""``python -m aiobatch.testing --port 8080 --items 1000000 --latency-ms 50``."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())

"""The logger tree and ``LLAMA_CLOUD_LOG``.

Every logger is a child of ``aiobatch``, so one ``logging.getLogger("aiobatch")``
configures them all; each record carries its numbers and names as ``extra``
fields (a JSON formatter gets fields, not sentences):

* ``aiobatch.http``: one debug line per response (``method``, ``url_template``,
  ``status``, ``bytes``, ``duration_ms``);
* ``aiobatch.retry``: a debug line per retry (``operation``, ``cause``,
  ``status``, ``delay``, ``attempt``);
* ``aiobatch.scan``: drift (warning, ``drift``), what a scan handled without
  loss (info, ``note``), concurrency changes (debug, ``concurrency``);
* ``aiobatch.events``: a hook that raised (error, ``hook_event``).

``LLAMA_CLOUD_LOG`` (``debug``, ``info``, ``warning``, ``error``; the official
SDK reads the same variable) sets the ``aiobatch`` level when a client is made,
and adds a stderr handler only if neither ``aiobatch`` nor the root logger has
one (an application's own logging setup is left alone).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from ._errors import ConfigurationError

__all__ = ["LEVELS", "LOG_ENV_VAR", "apply_log_env"]

LOG_ENV_VAR = "LLAMA_CLOUD_LOG"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def env_level(env: Mapping[str, str] | None = None) -> int | None:
    """The level ``LLAMA_CLOUD_LOG`` asks for (None when unset)."""
    env = os.environ if env is None else env
    raw = env.get(LOG_ENV_VAR, "").strip()
    if not raw:
        return None
    level = LEVELS.get(raw.lower())
    if level is None:
        shown = repr(raw) if len(raw) <= 12 else f"a {len(raw)}-character value"
        raise ConfigurationError(f"{LOG_ENV_VAR} must be one of {', '.join(LEVELS)}, got {shown}")
    return level


def apply_log_env(env: Mapping[str, str] | None = None) -> None:
    level = env_level(env)
    if level is None:
        return
    logger = logging.getLogger("aiobatch")
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("[%(asctime)s - %(name)s - %(levelname)s] %(message)s")
        )
        logger.addHandler(handler)

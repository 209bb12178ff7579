"""``batches create --webhook-*``: one typed webhook configuration from flags.

The signing secret is a credential: given as ``--webhook-signing-secret`` it
shows in the process list (``ps``, ``/proc/*/cmdline``) to every local user, so
it may come from a file (``--webhook-signing-secret-file``) or the environment
(``LLAMA_CLOUD_WEBHOOK_SIGNING_SECRET``) instead."""

from __future__ import annotations

import argparse
import os

from .._webhook_setup import OUTPUT_FORMATS, WEBHOOK_EVENTS, WebhookConfiguration
from ._context import Context, UsageError

__all__ = ["SECRET_ENV_VAR", "add_webhook_options", "webhook_configurations"]

SECRET_ENV_VAR = "LLAMA_CLOUD_WEBHOOK_SIGNING_SECRET"
#: A secret file larger than this is not a secret file (a wrong path, a log).
_MAX_SECRET_BYTES = 4096


def add_webhook_options(p: argparse.ArgumentParser) -> None:
    w = p.add_argument_group(
        "webhook", "a webhook configuration of this batch (aiobatch.webhooks.WebhookConfiguration)"
    )
    w.add_argument("--webhook-url", metavar="URL", help="where deliveries are POSTed")
    w.add_argument(
        "--webhook-event",
        action="append",
        choices=WEBHOOK_EVENTS,
        metavar="EVENT",
        help="an event to deliver (repeatable; batch.pending, batch.running, batch.success, "
        "batch.error, batch.cancelled, or a job's: parse.success...; default: the server's)",
    )
    w.add_argument(
        "--webhook-header",
        action="append",
        metavar="'NAME: VALUE'",
        help="a header sent with each delivery (repeatable)",
    )
    s = w.add_mutually_exclusive_group()
    s.add_argument(
        "--webhook-signing-secret",
        metavar="SECRET",
        help="signs each delivery (LC-Signature); visible to other local users in the "
        f"process list: prefer --webhook-signing-secret-file or ${SECRET_ENV_VAR}",
    )
    s.add_argument(
        "--webhook-signing-secret-file",
        metavar="PATH",
        help="read the signing secret from this file (one line; surrounding whitespace "
        f"dropped); default: ${SECRET_ENV_VAR} when set",
    )
    w.add_argument("--webhook-output-format", choices=list(OUTPUT_FORMATS))


def _signing_secret(a: argparse.Namespace) -> str | None:
    """The flag, else the file, else the environment (an empty variable is unset)."""
    if a.webhook_signing_secret is not None:
        return str(a.webhook_signing_secret)
    path = a.webhook_signing_secret_file
    if path is None:
        return os.environ.get(SECRET_ENV_VAR) or None
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise UsageError(
            f"--webhook-signing-secret-file {path!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    # Never quote the content: it is the secret, or something mistaken for it.
    if len(raw) > _MAX_SECRET_BYTES:
        raise UsageError(f"--webhook-signing-secret-file {path!r}: over {_MAX_SECRET_BYTES} bytes")
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--webhook-signing-secret-file {path!r}: not UTF-8 text") from None
    if not secret or any(c in secret for c in "\r\n"):
        raise UsageError(f"--webhook-signing-secret-file {path!r}: expected the secret on one line")
    return secret


def webhook_configurations(ctx: Context) -> list[WebhookConfiguration] | None:
    """One webhook configuration from the --webhook-* flags (checked before any request)."""
    a = ctx.args
    headers: dict[str, str] = {}
    for line in a.webhook_header or ():
        name, sep, value = line.partition(":")
        if not sep:
            raise UsageError(f"--webhook-header {line[:40]!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    given = (a.webhook_url, a.webhook_event, headers, a.webhook_signing_secret)
    unset = (a.webhook_signing_secret_file, a.webhook_output_format)
    # The environment's secret alone asks for no webhook: it signs one the flags describe.
    if not any(given) and all(x is None for x in unset):
        return None
    secret = _signing_secret(a)
    try:
        hook = WebhookConfiguration(
            webhook_url=a.webhook_url,
            webhook_events=a.webhook_event,
            webhook_headers=headers or None,
            webhook_signing_secret=secret,
            webhook_output_format=a.webhook_output_format,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    return [hook]

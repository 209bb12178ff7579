"""Scans as Apache Arrow: ``RecordBatch``es and ``Table``s of ``BatchItem``s.

Needs pyarrow (the ``parquet`` extra: ``pip install 'aiobatch[parquet]'``), imported
only when a function here is called, so ``import aiobatch`` never needs it::

    from aiobatch.arrow import iter_arrow, to_arrow

    table = await to_arrow(client.job_items.iter_pages(job_id, page_size=1000))
    async for batch in iter_arrow(client.job_items.iter(job_id), batch_size=100_000):
        ...

Columns are typed (``ITEM_COLUMNS`` order, the CLI's CSV/Parquet order): ids,
names and messages are strings, ``status`` is dictionary-encoded (six values for
millions of rows), timestamps are ``timestamp("us", tz="UTC")``.  Conversion is
column-wise: one Python list per column per batch, handed to ``pa.array`` with its
type, never a dict per row.  The CLI's Parquet export writes these same batches.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._paging.types import Page
from .models import BatchItem

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ITEM_COLUMNS",
    "item_schema",
    "iter_arrow",
    "record_batch",
    "to_arrow",
]

DEFAULT_BATCH_SIZE = 65_536

#: Column order: the wire fields, as in the CLI's CSV and Parquet exports.
ITEM_COLUMNS = (
    "item_id",
    "item_name",
    "status",
    "error_message",
    "skip_reason",
    "job_id",
    "job_record_id",
    "started_at",
    "completed_at",
    "effective_at",
)
_REQUIRED = frozenset({"item_id", "item_name", "status"})
_TIMESTAMPS = frozenset({"started_at", "completed_at", "effective_at"})
_GETTERS = {name: attrgetter(name) for name in ITEM_COLUMNS}


def _pyarrow() -> Any:
    try:
        return importlib.import_module("pyarrow")
    except ImportError as exc:
        raise ImportError(
            "aiobatch.arrow needs pyarrow, which is not installed: pip install 'aiobatch[parquet]'"
        ) from exc


def item_schema() -> pa.Schema:
    """The Arrow schema of ``BatchItem`` rows."""
    pa = _pyarrow()
    fields = []
    for name in ITEM_COLUMNS:
        if name == "status":
            tp = pa.dictionary(pa.int32(), pa.string())
        elif name in _TIMESTAMPS:
            tp = pa.timestamp("us", tz="UTC")
        else:
            tp = pa.string()
        fields.append(pa.field(name, tp, nullable=name not in _REQUIRED))
    return pa.schema(fields)


def record_batch(items: Sequence[BatchItem], *, schema: pa.Schema | None = None) -> pa.RecordBatch:
    """One ``RecordBatch`` holding ``items``, built column by column."""
    pa = _pyarrow()
    schema = item_schema() if schema is None else schema
    columns = []
    for field in schema:
        values = list(map(_GETTERS[field.name], items))
        if field.name == "status":
            # StrEnum members are str: encode as strings, then as a dictionary.
            columns.append(pa.array(values, type=pa.string()).dictionary_encode())
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


async def iter_arrow(
    source: AsyncIterable[BatchItem | Page[BatchItem]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> AsyncGenerator[pa.RecordBatch, None]:
    """``RecordBatch``es of exactly ``batch_size`` rows (the last one may be
    shorter) from a scan: ``client.job_items.iter(...)``, ``iter_pages(...)``, or
    any async iterable of ``BatchItem``s or of ``Page``s of them.

    Stopping early (``break``, an error, cancellation) closes ``source`` if it
    can be closed, so a scan's requests stop with it.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    schema = item_schema()  # also fails fast, before the scan, without pyarrow
    buffer: list[BatchItem] = []
    iterator = aiter(source)
    finished = False
    try:
        async for entry in iterator:
            if isinstance(entry, Page):
                buffer.extend(entry.items)
            else:
                buffer.append(entry)
            if len(buffer) >= batch_size:
                _check_items(buffer)
                while len(buffer) >= batch_size:
                    yield record_batch(buffer[:batch_size], schema=schema)
                    del buffer[:batch_size]
        finished = True
        if buffer:
            _check_items(buffer)
            yield record_batch(buffer, schema=schema)
    finally:
        close = getattr(iterator, "aclose", None)
        if not finished and close is not None:
            await close()


async def to_arrow(
    source: AsyncIterable[BatchItem | Page[BatchItem]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pa.Table:
    """The whole scan as one ``pyarrow.Table`` (chunked by ``batch_size`` rows);
    an empty scan gives an empty table with the same schema."""
    pa = _pyarrow()
    batches = [b async for b in iter_arrow(source, batch_size=batch_size)]
    return pa.Table.from_batches(batches, schema=item_schema())


def _check_items(items: list[BatchItem]) -> None:
    # One look per batch (both ends): a scan of jobs, or of something else,
    # would otherwise fail deep inside pyarrow with an attribute error.
    for item in (items[0], items[-1]):
        if not isinstance(item, BatchItem):
            raise TypeError(
                "iter_arrow takes BatchItems or Pages of BatchItems (a job_items scan), "
                f"got {type(item).__name__}"
            )

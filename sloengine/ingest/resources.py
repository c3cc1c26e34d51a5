"""Resource ids: spans point to their resource (``resources`` table, migrations/013) by a
64-bit hash of its attributes, so a resource sent in many batches is stored once.

The id is computed after redaction, from what is stored: a hash of raw values would let
anyone holding the database test guesses of a redacted value against it. Until then
decoders number a chunk's resources 0…k-1 (``SpanColumns``); :func:`assign_ids` replaces
those positions, in the ``resources`` table and in the spans' ``resource_id``.
"""

from __future__ import annotations

import hashlib

import orjson
import pyarrow as pa

from sloengine.model import Chunk


def resource_id(entries: list[tuple[str, str]]) -> int:
    """The id of a resource with these (key, value) attributes, in any order.

    blake2b of the sorted pairs as JSON (unambiguous whatever the keys and values hold),
    truncated to 64 bits: among a million distinct resources the chance that two share an
    id is below 1e-7.
    """
    digest = hashlib.blake2b(orjson.dumps(sorted(entries)), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign_ids(chunk: Chunk) -> Chunk:
    """Give the chunk's resources their stored ids (see the module docstring)."""
    res = chunk.resources
    if res is None:
        return chunk
    attrs = res.column("attributes").to_pylist()
    ids = pa.array([resource_id(a or []) for a in attrs], pa.uint64())
    chunk.resources = res.set_column(res.schema.get_field_index("resource_id"), "resource_id",
                                     ids)
    spans = chunk.spans
    if spans is not None and spans.num_rows:
        i = spans.schema.get_field_index("resource_id")
        chunk.spans = spans.set_column(i, spans.schema.field(i),
                                       ids.take(spans.column(i).combine_chunks()))
    return chunk

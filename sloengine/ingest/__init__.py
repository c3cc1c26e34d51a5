"""Ingest: bytes → columnar chunks (Arrow), validated and redacted. No database here."""

from sloengine.ingest.accesslog import AccessLogMapping
from sloengine.ingest.columns import SCHEMAS
from sloengine.ingest.context import DecodeOptions, DecodeState
from sloengine.ingest.parallel import DecodePool
from sloengine.ingest.reader import (
    ReadOptions,
    decode_json,
    decode_proto,
    detect,
    expand,
    finish_chunk,
    read_file,
    source_info,
)
from sloengine.ingest.redact import DEFAULT_KEYS, DEFAULT_PATTERNS, Redactor, ValuePattern

__all__ = [
    "DEFAULT_KEYS",
    "DEFAULT_PATTERNS",
    "SCHEMAS",
    "AccessLogMapping",
    "DecodeOptions",
    "DecodePool",
    "DecodeState",
    "ReadOptions",
    "Redactor",
    "ValuePattern",
    "decode_json",
    "decode_proto",
    "detect",
    "expand",
    "finish_chunk",
    "read_file",
    "source_info",
]

"""Salvage the good records of a protobuf OTLP request that does not parse whole.

A truncated upload or one bad string (invalid UTF-8) makes ``ParseFromString`` refuse the
whole message. The three OTLP requests share one shape — field 1 of the request holds
Resource{Spans,Logs,Metrics}, field 2 of those holds Scope*, field 2 of a Scope* holds the
records — so one wire-format walk can keep every complete record and dead-letter only the
part that is broken (protobuf encoding spec: tag = field << 3 | wire type; type 2 is
length-delimited).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.message import DecodeError as ProtoDecodeError

from sloengine.ingest.context import DecodeState


class _Truncated(Exception):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Truncated
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(data: bytes) -> Iterator[tuple[int, int, bytes, bool]]:
    """(field number, wire type, raw field bytes incl. tag, complete?) for each field."""
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        try:
            tag, pos = _varint(data, pos)
            wt = tag & 7
            if wt == 0:
                _, pos = _varint(data, pos)
            elif wt == 1:
                pos += 8
            elif wt == 5:
                pos += 4
            elif wt == 2:
                ln, pos = _varint(data, pos)
                pos += ln
            else:
                raise ValueError(f"wire type {wt} at byte {start}")
        except _Truncated:
            yield tag_or_zero(data, start), 2, data[start:], False
            return
        if pos > n:
            yield tag >> 3, wt, data[start:], False
            return
        yield tag >> 3, wt, data[start:pos], True


def tag_or_zero(data: bytes, start: int) -> int:
    try:
        return _varint(data, start)[0] >> 3
    except _Truncated:
        return 0


def _payload(raw: bytes) -> bytes:
    """The content of a (possibly truncated) length-delimited field."""
    _, pos = _varint(raw, 0)
    try:
        _, pos = _varint(raw, pos)
    except _Truncated:
        return b""
    return raw[pos:]


def salvage(
    data: bytes,
    classes: tuple[Any, Any, Any, Any],
    names: tuple[str, str, str],
    state: DecodeState,
    signal: str,
) -> Any:
    """Rebuild ``classes[0]`` from whatever parses; dead-letter the rest.

    ``classes`` = (request, resource-level, scope-level, record) message classes,
    ``names`` = their JSON names for locations, e.g. ("resourceSpans", "scopeSpans", "spans").
    """
    return _level(data, classes, names, 0, "", state, signal)


def _level(
    data: bytes, classes: tuple[Any, ...], names: tuple[str, ...], depth: int, where: str,
    state: DecodeState, signal: str,
) -> Any:
    msg = classes[depth]()
    child_field = 1 if depth == 0 else 2
    shell = bytearray()
    children: list[Any] = []
    index = 0
    try:
        for num, _wt, raw, complete in fields(data):
            if num != child_field:
                if complete:
                    shell += raw
                else:
                    state.reject(where or "message", f"truncated protobuf field {num}", raw, signal)
                continue
            loc = f"{where}{'.' if where else ''}{names[depth]}[{index}]"
            index += 1
            child_cls = classes[depth + 1]
            if complete:
                child = child_cls()
                try:
                    child.ParseFromString(_payload(raw))
                    children.append(child)
                    continue
                except ProtoDecodeError as exc:
                    if depth + 1 == len(classes) - 1:
                        state.reject(loc, f"invalid protobuf: {exc}", raw, signal)
                        continue
            elif depth + 1 == len(classes) - 1:
                state.reject(loc, "truncated protobuf: the record is cut off", raw, signal)
                continue
            before = len(state.dead_letters)
            children.append(_level(_payload(raw), classes, names, depth + 1, loc, state, signal))
            if not complete and len(state.dead_letters) == before:
                # the cut fell between records: say so at this level
                state.reject(loc, "truncated protobuf: the record is cut off", raw, signal)
    except ValueError as exc:
        state.reject(where or "message", f"invalid protobuf: {exc}", data, signal)
    if shell:
        try:
            msg.ParseFromString(bytes(shell))
        except ProtoDecodeError as exc:
            state.reject(where or "message", f"invalid protobuf: {exc}", bytes(shell), signal)
    container = getattr(msg, msg.DESCRIPTOR.fields_by_number[child_field].name)
    container.extend(children)
    return msg

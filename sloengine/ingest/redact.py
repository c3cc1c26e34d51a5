"""Redaction at ingest: secrets and personal data never reach the database.

A matching value is replaced by a keyed token ``[redacted:RULE:HMAC]`` (HMAC-SHA256 under the
engine's redaction key, first 16 hex digits), so two records with the same e-mail address can
still be joined on the token while the address itself is gone. Rules match attribute keys
(the whole value goes) and value patterns (only the matching part goes, the rest of a log line
stays readable).

Columnar: the patterns run over whole Arrow string columns at once (``pyarrow.compute``, RE2);
Python touches only the values that matched.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, slots=True)
class ValuePattern:
    name: str
    regex: str
    #: Extra check on a match (e.g. the Luhn checksum for card numbers).
    check: Callable[[str], bool] | None = None


def luhn_ok(text: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


DEFAULT_KEYS = (
    "http.request.header.authorization",
    "http.request.header.cookie",
    "http.request.header.proxy-authorization",
    "http.request.header.x-api-key",
    "http.response.header.set-cookie",
    "authorization",
    "cookie",
    "password",
    "user.email",
    "user.full_name",
    "user.name",
    "user.phone",
    "enduser.id",
    "card.number",
)

DEFAULT_PATTERNS = (
    ValuePattern("email", r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    ValuePattern("bearer", r"(?i)bearer\s+[A-Za-z0-9\-._~+/]+=*"),
    ValuePattern("jwt", r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
    ValuePattern(
        "card",
        r"\b(?:4\d{3}|5[1-5]\d{2}|2[2-7]\d{2}|3[47]\d{2}|6011|65\d{2})(?:[ \-]?\d{3,4}){2,4}\b",
        luhn_ok,
    ),
)


@dataclass(frozen=True)
class Redactor:
    """Applies key and value-pattern rules to the string columns of a chunk."""

    key: bytes
    keys: frozenset[str] = frozenset(DEFAULT_KEYS)
    patterns: tuple[ValuePattern, ...] = DEFAULT_PATTERNS
    _compiled: list[tuple[ValuePattern, re.Pattern[str]]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._compiled.extend((p, re.compile(p.regex)) for p in self.patterns)

    def token(self, rule: str, value: str) -> str:
        digest = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:16]
        return f"[redacted:{rule}:{digest}]"

    def redact_text(self, text: str) -> str:
        for p, rx in self._compiled:
            def sub(m: re.Match[str], p: ValuePattern = p) -> str:
                if p.check is not None and not p.check(m.group(0)):
                    return m.group(0)
                return self.token(p.name, m.group(0))

            text = rx.sub(sub, text)
        return text

    def _any_match(self, arr: pa.Array) -> pa.Array:
        if len(self.patterns) > 1:
            # One RE2 pass over the column for all patterns (an alternation matches where any
            # of its branches does); patterns that cannot be combined are run one by one.
            either = "|".join(f"(?:{p.regex})" for p in self.patterns)
            try:
                return pc.fill_null(pc.match_substring_regex(arr, either), False)
            except pa.ArrowInvalid:
                pass
        mask = None
        for p in self.patterns:
            m = pc.match_substring_regex(arr, p.regex)
            mask = m if mask is None else pc.or_(mask, m)
        return pc.fill_null(mask, False)

    def string_array(self, arr: pa.Array) -> tuple[pa.Array, int]:
        """Redact value patterns in a string array; returns the array and the values changed."""
        if len(arr) == 0 or not self.patterns:
            return arr, 0
        mask = self._any_match(arr)
        if not pc.any(mask).as_py():
            return arr, 0
        # Python sees only the matching values; Arrow puts the new ones in place.
        hits = arr.filter(mask).to_pylist()
        news = [self.redact_text(v) for v in hits]
        changed = sum(1 for old, new in zip(hits, news, strict=True) if new != old)
        if not changed:
            return arr, 0
        return pc.replace_with_mask(arr, mask, pa.array(news, arr.type)), changed

    def map_array(self, arr: pa.Array) -> tuple[pa.Array, int]:
        """Redact a MAP<string, V>: whole values under sensitive keys, patterns in strings."""
        new, changed = self._map_redact(arr)
        return new, len(changed)

    def _map_redact(self, arr: pa.Array) -> tuple[pa.Array, list[int]]:
        """The redacted map and the positions (in its flat items) of the values changed."""
        if len(arr) == 0 or (not self.keys and not self.patterns):
            return arr, []
        keys, items = arr.keys, arr.items
        key_mask = pc.is_in(pc.utf8_lower(keys), value_set=pa.array(sorted(self.keys), pa.string()))
        hit_keys = bool(pc.any(key_mask).as_py())
        is_text = pa.types.is_string(items.type)
        if is_text and self.patterns:  # keys only (no patterns): nothing to match values on
            pat_mask = self._any_match(items)
            hit_pat = pc.any(pat_mask).as_py()
        else:
            hit_pat = False
        if not hit_keys and not hit_pat:
            return arr, []
        # Python sees only the matching entries; Arrow puts the new values in place.
        mask = pc.or_(key_mask, pat_mask) if hit_pat else key_mask
        changed: list[int] = []
        news: list[Any] = []
        for i, by_key, k, v in zip(
            pc.indices_nonzero(mask).to_pylist(),
            key_mask.filter(mask).to_pylist(),
            keys.filter(mask).to_pylist(),
            items.filter(mask).to_pylist(),
            strict=True,
        ):
            if by_key:
                # A token is text and cannot live in an int/double/bool map: the value is
                # nulled there.
                news.append(self.token(k, _text(v)) if is_text else None)
                changed.append(i)
            else:
                new = self.redact_text(v)
                if new != v:
                    changed.append(i)
                news.append(new)
        new_items = pc.replace_with_mask(items, mask, pa.array(news, items.type))
        return pa.MapArray.from_arrays(arr.offsets, keys, new_items), changed

    def dictionary_map_array(self, arr: pa.Array) -> tuple[pa.Array, int]:
        """Redact a dictionary-encoded MAP (e.g. resource attributes): each distinct map once.

        Counted per row as for a plain map: a changed value counts once for every row whose
        map holds it."""
        new_d, changed = self._map_redact(arr.dictionary)
        if not changed:
            return arr, 0
        offsets = arr.dictionary.offsets.to_pylist()
        per_map = [0] * (len(offsets) - 1)
        for pos in changed:
            per_map[bisect.bisect_right(offsets, pos) - 1] += 1
        total = pc.sum(pc.take(pa.array(per_map, pa.int64()), arr.indices)).as_py() or 0
        return pa.DictionaryArray.from_arrays(arr.indices, new_d), int(total)

    def json_array(self, arr: pa.Array) -> tuple[pa.Array, int]:
        """Redact sensitive keys inside a JSON-object column (complex attribute values such
        as header arrays), then value patterns in its text."""
        changed = 0
        if len(arr) and self.keys:
            alternation = "|".join(re.escape(k) for k in sorted(self.keys))
            mask = pc.fill_null(
                pc.match_substring_regex(arr, f'(?i)"(?:{alternation})"'), False)
            if pc.any(mask).as_py():
                values = arr.to_pylist()
                for i in pc.indices_nonzero(mask).to_pylist():
                    obj = orjson.loads(values[i])
                    for k in list(obj):
                        if k.lower() in self.keys:
                            obj[k] = self.token(k, _text(obj[k]))
                            changed += 1
                    values[i] = orjson.dumps(obj).decode()
                arr = pa.array(values, arr.type)
        arr, n = self.string_array(arr)
        return arr, changed + n

    def apply(self, tbl: Any, text_columns: tuple[str, ...]) -> tuple[Any, int]:
        """Redact every MAP column and the named text columns of an Arrow table."""
        total = 0
        for i, f in enumerate(tbl.schema):
            col = tbl.column(i).combine_chunks()
            if pa.types.is_map(f.type):
                new, n = self.map_array(col)
            elif pa.types.is_dictionary(f.type) and pa.types.is_map(f.type.value_type):
                new, n = self.dictionary_map_array(col)
            elif f.name == "attr_json":
                new, n = self.json_array(col)
            elif f.name in text_columns:
                new, n = self.string_array(col)
            else:
                continue
            if n:
                tbl = tbl.set_column(i, f, new)
                total += n
        return tbl, total


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


#: Text columns (besides attribute maps) that may carry free text with secrets in it.
TEXT_COLUMNS = {
    "spans": ("status_message", "attr_json"),
    "span_events": (),
    "resources": (),
    "logs": ("body", "attr_json"),
    "metric_points": (),
}

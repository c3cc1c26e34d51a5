"""Erasure of one person's records (GDPR art. 17): every span, span event, log record, metric
point and dead letter that carries ``KEY=VALUE`` goes; aggregates stay.

What "carries" means, per table (the engine fills in what depends on ingest: the promoted
column a key maps to, whether it is a correlation key, the redaction token):

- an attribute map entry ``KEY`` (string, int, double or bool map, resource attributes, span
  event and metric point attributes, a complex value in ``attr_json``) equal to VALUE; a
  resource (``resources`` row) that carries it goes with every span that points to it;
- the promoted column of KEY (``http.route`` → ``http_route``), ``correlation_id`` when KEY is
  a correlation key, ``service_name`` for ``service.name``;
- a log body or span status message holding VALUE as a whole word;
- a dead letter whose raw bytes contain VALUE;
- in each of these, the redaction token of VALUE (``[redacted:RULE:HMAC]``, ingest/redact.py)
  in place of VALUE: a value redacted at ingest is found by its token.

Span events of an erased span go with it. SLO buckets, evaluations, alerts, lineage batch rows
(their counts stay as ingested) and the audit trail are not touched; the trace id index is
forgotten (store/layout.py, as retention does) because it would name rows that are gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sloengine.store import layout

if TYPE_CHECKING:
    from sloengine.store.database import Store

TABLES = ("spans", "span_events", "resources", "logs", "metric_points", "dead_letters")


@dataclass(frozen=True, slots=True)
class ErasureMatch:
    """What to erase. ``token_hash``: the HMAC part of VALUE's redaction token (None: the
    engine redacts nothing). ``span_column``/``log_column``: the promoted column of KEY."""

    key: str
    value: str
    token_hash: str | None = None
    span_column: str | None = None
    log_column: str | None = None
    correlation: bool = False


@dataclass(slots=True)
class ErasureReport:
    """Rows matched per table (deleted unless it was a dry run), and per lineage batch."""

    counts: dict[str, int] = field(default_factory=dict)
    by_batch: dict[int, dict[str, int]] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _typed(value: str) -> tuple[int | None, float | None, bool | None]:
    try:
        as_int: int | None = int(value)
        if not -(2**63) <= as_int < 2**63:  # type: ignore[operator]
            as_int = None
    except ValueError:
        as_int = None
    try:
        as_float: float | None = float(value)
    except ValueError:
        as_float = None
    as_bool = {"true": True, "false": False}.get(value.lower())
    return as_int, as_float, as_bool


class _Sql:
    """The WHERE clauses of one match, with their named parameters."""

    def __init__(self, m: ErasureMatch) -> None:
        self.m = m
        vi, vd, vb = _typed(m.value)
        self.params: dict[str, Any] = {
            "k": m.key, "v": m.value, "vi": vi, "vd": vd, "vb": vb,
            "jpath": '$."' + m.key.replace('"', '\\"') + '"',
            "word": r"(^|[^A-Za-z0-9_])" + re.escape(m.value) + r"($|[^A-Za-z0-9_])",
            "tok": f":{m.token_hash}]" if m.token_hash else None,
        }

    def _is(self, expr: str) -> str:
        """``expr`` is VALUE, or VALUE's redaction token."""
        if self.m.token_hash is None:
            return f"coalesce({expr} = $v, false)"
        return (f"coalesce({expr} = $v OR (starts_with({expr}, '[redacted:')"
                f" AND ends_with({expr}, $tok)), false)")

    def _holds(self, expr: str) -> str:
        """``expr`` (free text) holds VALUE as a word, or VALUE's token."""
        tok = "" if self.m.token_hash is None else f" OR contains({expr}, $tok)"
        return f"coalesce(regexp_matches({expr}, $word){tok}, false)"

    def _attrs(self, table: str) -> list[str]:
        # spans point to their resource (migrations/013); logs hold its attributes inline
        resource = (f"resource_id IN (SELECT resource_id FROM resources WHERE"
                    f" {self._is('map_extract_value(attributes, $k)')})" if table == "spans"
                    else self._is("map_extract_value(resource_attributes, $k)"))
        return [self._is("map_extract_value(attr_str, $k)"),
                "coalesce(map_extract_value(attr_int, $k) = $vi, false)",
                "coalesce(map_extract_value(attr_double, $k) = $vd, false)",
                "coalesce(map_extract_value(attr_bool, $k) = $vb, false)",
                self._is("json_extract_string(attr_json, $jpath)"), resource]

    def _common(self, table: str, column: str | None) -> list[str]:
        out = self._attrs(table)
        if column is not None:
            out.append(self._is(f"CAST({column} AS VARCHAR)"))
        if self.m.correlation:
            out.append(self._is("correlation_id"))
        if self.m.key == "service.name":
            out.append(self._is("service_name"))
        return out

    def where(self, table: str) -> str:
        if table == "spans":
            parts = self._span_parts()
        elif table == "logs":
            parts = [*self._common("logs", self.m.log_column), self._holds("body")]
        elif table == "resources":
            parts = [self._is("map_extract_value(attributes, $k)")]
            if self.m.key == "service.name":
                parts.append(self._is("service_name"))
        elif table == "metric_points":
            parts = [self._is("map_extract_value(attributes, $k)"),
                     self._is("map_extract_value(resource_attributes, $k)")]
            if self.m.key == "service.name":
                parts.append(self._is("service_name"))
        elif table == "span_events":
            spans = " OR ".join(f"({p})" for p in self._span_parts())
            parts = [self._is("map_extract_value(attributes, $k)"),
                     "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = span_events.trace_id"
                     f" AND s.span_id = span_events.span_id AND ({spans}))"]
        else:
            raise ValueError(table)
        return " OR ".join(f"({p})" for p in parts)

    def _span_parts(self) -> list[str]:
        return [*self._common("spans", self.m.span_column), self._holds("status_message")]

    def used(self, sql: str) -> dict[str, Any]:
        """The parameters ``sql`` names (DuckDB refuses unused named parameters)."""
        names = set(re.findall(r"\$(\w+)", sql))
        return {k: v for k, v in self.params.items() if k in names}

    def needles(self) -> list[bytes]:
        out = [self.m.value.encode()]
        if self.m.token_hash is not None:
            out.append(f":{self.m.token_hash}]".encode())
        return out


def erase(store: Store, m: ErasureMatch, *, dry_run: bool = False) -> ErasureReport:
    """Count, and unless ``dry_run`` delete, the records that carry ``m`` (one transaction;
    span events before their spans, as the events' match reads the spans)."""
    if not m.key or not m.value:
        raise ValueError("an erasure needs a key and a value")
    sql = _Sql(m)
    report = ErasureReport(dry_run=dry_run)
    with store.transaction():
        # events read spans, spans read resources: each before what it reads is gone
        for table in ("span_events", "spans", "resources", "logs", "metric_points"):
            where = sql.where(table)
            params = sql.used(where)
            rows = store.rows(f"SELECT batch_id, count(*) FROM {table} WHERE {where} "
                              "GROUP BY batch_id ORDER BY batch_id", params)
            _count(report, table, rows)
            if rows and not dry_run:
                store.exec_(f"DELETE FROM {table} WHERE {where}", params)
        needles = sql.needles()
        dead = [(key, bid) for key, bid, raw in store.rows(
                    "SELECT dl_key, batch_id, raw FROM dead_letters ORDER BY dl_key")
                if any(n in raw for n in needles)]
        counts: dict[int, int] = {}
        for _key, bid in dead:
            counts[bid] = counts.get(bid, 0) + 1
        _count(report, "dead_letters", sorted(counts.items()))
        if dead and not dry_run:
            store.exec_("DELETE FROM dead_letters WHERE dl_key IN (SELECT unnest(?))",
                        [[k for k, _ in dead]])
        if not dry_run and any(report.counts[t] for t in layout.INDEXED):
            layout.invalidate(store)
    return report


def _count(report: ErasureReport, table: str, rows: list[tuple[Any, ...]]) -> None:
    report.counts[table] = sum(int(n) for _, n in rows)
    for bid, n in rows:
        report.by_batch.setdefault(int(bid), {})[table] = int(n)

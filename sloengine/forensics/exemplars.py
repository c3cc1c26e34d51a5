"""``sloengine traces --slo NAME``: example requests that burned an SLO's error budget.

The SLI's bad events are compiled to SQL by compute (``compute/exemplars.py``
``bad_event_filter``, the same predicates the buckets use); forensics may not import compute,
so the Engine passes the compiled ``(table, where_sql, params)`` in. Events are placed in time
by the same column as the SLO buckets (spans: end time; logs: the record time), so the
exemplars of a window are exactly the bad events that window counted.

JSON (``"schema": "sloengine.traces/v1"``)::

    {"schema", "slo": str, "from": iso, "to": iso, "order": "worst" | "newest",
     "exemplars": [{"trace_id", "span_id", "correlation_id", "time": iso,
                    "time_unix_nano": str, "service", "route", "status", "duration_ns",
                    "is_error": bool}]}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from sloengine.errors import ConfigError
from sloengine.forensics.contract import iso_ns
from sloengine.store import Store

SCHEMA = "sloengine.traces/v1"
Order = Literal["worst", "newest"]

_SELECT = {
    "spans": """
SELECT trace_id, span_id, correlation_id, end_time_unix_nano AS t, service_name,
       coalesce(http_method || ' ' || http_route, http_route, name) AS route,
       coalesce(CAST(http_status_code AS VARCHAR), rpc_status_code, status_code) AS status,
       duration_ns, is_error
FROM spans""",
    "logs": """
SELECT trace_id, span_id, correlation_id, time_unix_nano AS t, service_name,
       coalesce(http_method || ' ' || http_route, http_route, event_name) AS route,
       coalesce(CAST(http_status_code AS VARCHAR), severity_text) AS status, duration_ns,
       coalesce(http_status_code >= 500, FALSE) OR coalesce(severity_number >= 17, FALSE)
         AS is_error
FROM logs""",
}
_ORDER = {
    "worst": "ORDER BY is_error DESC, duration_ns DESC NULLS LAST, t DESC, trace_id, span_id",
    "newest": "ORDER BY t DESC, is_error DESC, duration_ns DESC NULLS LAST, trace_id, span_id",
}


@dataclass(frozen=True, slots=True)
class Exemplar:
    trace_id: str | None
    span_id: str | None
    correlation_id: str | None
    time_unix_nano: int
    service: str | None
    route: str | None
    status: str | None
    duration_ns: int | None
    is_error: bool

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = iso_ns(self.time_unix_nano)
        out["time_unix_nano"] = str(self.time_unix_nano)
        return out


def exemplars(store: Store, table: str, where_sql: str, params: list[Any], *,
              t_from_ns: int, t_to_ns: int, errors_only: bool = False, limit: int = 20,
              order: Order = "worst") -> list[Exemplar]:
    """Bad events of an SLI in ``[t_from_ns, t_to_ns)``, worst (failed, then slowest) or
    newest first. ``where_sql``/``params``: the compiled bad-event predicate of ``table``."""
    if table not in _SELECT:
        raise ConfigError(f"exemplars come from spans or logs, not {table!r}")
    if limit < 1:
        raise ConfigError("--limit must be at least 1")
    sql = f"SELECT * FROM ({_SELECT[table]} WHERE ({where_sql})) e WHERE t >= ? AND t < ?"
    if errors_only:
        sql += " AND is_error"
    sql += f" {_ORDER[order]} LIMIT ?"
    rows = store.rows(sql, [*params, t_from_ns, t_to_ns, limit])
    return [Exemplar(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6],
                     None if r[7] is None else int(r[7]), bool(r[8])) for r in rows]

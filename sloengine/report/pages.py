"""The status pages that ``sloengine run`` serves (api/pages.py): an overview of every SLO,
one page per SLO, a request's waterfall, the login form and an error page.

Server-rendered from templates/pages/*.j2 with autoescape on (span names, attribute values,
SLO descriptions and group values are untrusted text); inline CSS and SVG, no JavaScript, no
external requests. Rendering only: the numbers come from the engine (``SloResult`` of
``Engine.status``, the ``sloengine.report/v1`` document, the ``sloengine.trace/v1`` story) and
are rounded and coloured here (ARCHITECTURE.md rule 7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment

from sloengine.errors import ConfigError
from sloengine.model import SloResult, TierDecision
from sloengine.report.render import environment, slo_view

#: what the SLO page offers as periods (days); the chart step follows the period
PERIOD_DAYS = (1, 7, 30)
_ACTIVE = ("firing", "pending")


def seg(value: str) -> str:
    """One URL path segment (SLO names and trace ids come from data: quote ``/`` too)."""
    return quote(value, safe="")


def since(minute: int | None) -> str:
    if minute is None:
        return "–"
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M")


def _env() -> Environment:
    env = environment(True)
    env.filters.update(seg=seg, since=since)
    return env


def burn_css(window: str, value: float | None, tiers: Sequence[TierDecision]) -> str:
    """Red when the rate is over the threshold of a tier that watches this window, amber
    when it spends faster than the budget allows (> 1×)."""
    if value is None:
        return "muted"
    limits = [d.threshold for d in tiers if window in (d.long_window, d.short_window)]
    if limits and value >= min(limits):
        return "bad"
    return "warn" if value > 1 else ""


def bar_width(remaining: float | None) -> float:
    """Width (percent) of the budget-remaining bar: an overspent budget draws empty."""
    return 0.0 if remaining is None else round(min(max(remaining, 0.0), 1.0) * 100, 1)


def _row(r: SloResult, many_objectives: bool) -> dict[str, Any]:
    return {
        "objective": r.objective if many_objectives else "", "target": r.target,
        "group": r.group, "status": r.status, "sli": r.sli, "good": r.good, "total": r.total,
        "remaining": r.error_budget.remaining_ratio,
        "bar": bar_width(r.error_budget.remaining_ratio),
        "budget_unit": r.error_budget.unit,
        "burn": [(w, v, burn_css(w, v, r.alerts)) for w, v in r.burn_rates.items()],
        "active": [d for d in r.alerts if d.state in _ACTIVE],
        "exhaustion": r.time_to_exhaustion_seconds,
    }


def overview_view(results: Sequence[SloResult]) -> list[dict[str, Any]]:
    """One entry per SLO (by name) with a row per objective × group."""
    by_name: dict[str, list[SloResult]] = {}
    for r in results:
        by_name.setdefault(r.name, []).append(r)
    out = []
    for name in sorted(by_name):
        rs = sorted(by_name[name], key=lambda r: (r.objective, r.group))
        many = len({r.objective for r in rs}) > 1
        rows = [_row(r, many) for r in rs]
        out.append({"name": name, "service": rs[0].service, "window": rs[0].window,
                    "rows": rows, "firing": sum(len(x["active"]) for x in rows)})
    return out


def overview_html(*, results: Sequence[SloResult], alerts: Sequence[dict[str, Any]],
                  now: datetime, at: datetime | None = None, user: str | None = None) -> str:
    """``alerts``: the live state machine's pending/firing alerts (``Engine.live_alerts``,
    each with ``acknowledged``: {by, at, note, until} or None);
    ``at``: a look back in time (then tier states are the conditions at that minute)."""
    slos = overview_view(results)
    counts = {s: sum(r["status"] == s for x in slos for r in x["rows"])
              for s in ("ok", "no_data", "insufficient_data", "source_unavailable")}
    # now: the live state machine; back in time: the tiers whose condition held then
    severities = ([a["severity"] for a in alerts if a["state"] == "firing"] if at is None
                  else [d.severity for x in slos for r in x["rows"] for d in r["active"]
                        if d.state == "firing"])
    return _env().get_template("pages/overview.html.j2").render(
        slos=slos, counts=counts, alerts=list(alerts), at=at, user=user,
        shown_at=(at or now).astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        firing_pages=severities.count("page"), firing_tickets=severities.count("ticket"))


def slo_html(*, doc: dict[str, Any], state: Sequence[SloResult], days: int,
             at: datetime | None = None, user: str | None = None) -> str:
    """One SLO over the document's period; ``state``: its tiers now (``Engine.status``)."""
    [s] = doc["slos"]
    many = len({r.objective for r in state}) > 1
    return _env().get_template("pages/slo.html.j2").render(
        d=doc, s=s, v=slo_view(s, doc), user=user, days=days, periods=PERIOD_DAYS, at=at,
        tiers=[(_row(r, many), r.alerts) for r in state])


def trace_html(*, story: dict[str, Any], user: str | None = None) -> str:
    """The waterfall of report/templates/trace.html.j2 inside the status pages' frame."""
    return _env().get_template("pages/trace.html.j2").render(t=story, user=user)


def login_html(*, error: str | None = None, next_path: str = "/", user: str | None = None
               ) -> str:
    """``next_path``: where to go once signed in (the page that sent the person here)."""
    return _env().get_template("pages/login.html.j2").render(error=error, user=user,
                                                             next_path=next_path)


def error_html(*, status: int, title: str, detail: str, user: str | None = None) -> str:
    return _env().get_template("pages/error.html.j2").render(
        status=status, title=title, detail=detail, user=user)


_RENDERERS: dict[str, Callable[..., str]] = {
    "overview": overview_html, "slo": slo_html, "trace": trace_html, "login": login_html,
    "error": error_html}
PAGES = tuple(_RENDERERS)


def render_page(page: str, **context: Any) -> str:
    """Render one of ``PAGES`` (keyword arguments as the page's function takes them)."""
    fn = _RENDERERS.get(page)
    if fn is None:
        raise ConfigError(f"unknown status page {page!r}; one of {', '.join(PAGES)}")
    return fn(**context)

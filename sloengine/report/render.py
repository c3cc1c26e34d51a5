"""Render a ``sloengine.report/v1`` document (compute/report_doc.py) as HTML pages, one
Markdown file or JSON. Rendering only: every number comes from the document; here it is
rounded and laid out (ARCHITECTURE.md rule 7). HTML is self-contained — inline CSS and SVG,
no JavaScript, no external requests — so it opens from disk, in a mail, or an evidence bundle.

Files written into the output folder:

- ``html``: ``index.html`` (all SLOs), ``slo-<name>.html`` per SLO, ``auditor.html`` with
  ``--auditor``;
- ``md``: ``report.md`` (summary, then a section per SLO, then the auditor section);
- ``json``: ``report.json`` (the document itself).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from sloengine.errors import ConfigError
from sloengine.report.charts import Band, Chart, Rule, TimeScale, line_chart, minute, timeline

FORMATS = ("html", "md", "json")
_TEMPLATES = Path(__file__).parent / "templates"


def pct(v: float | None, digits: int = 3) -> str:
    """0.99877 → ``99.877%``; None → ``–`` (no data is not a number)."""
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def num(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def rate(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def when(iso: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if iso is None:
        return "–"
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).strftime(fmt)


def minutes(m: int | None) -> str:
    if m is None:
        return "–"
    d, rest = divmod(m, 1440)
    h, mm = divmod(rest, 60)
    return " ".join(p for p in (f"{d}d" if d else "", f"{h}h" if h else "",
                                f"{mm}m" if mm or not (d or h) else "") if p)


def ms(ns: int | None) -> str:
    if ns is None:
        return "–"
    return f"{ns / 1e9:.2f} s" if ns >= 1_000_000_000 else f"{ns / 1e6:.1f} ms"


def budget_css(v: float | None) -> str:
    """Presentation only: how a remaining budget is coloured."""
    if v is None:
        return "muted"
    return "bad" if v <= 0 else "warn" if v < 0.25 else "good"


def md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def environment(autoescape: bool) -> Environment:
    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html.j2"]) if autoescape else False,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, num=num, rate=rate, when=when, minutes=minutes, ms=ms,
                       budget_css=budget_css, md=md_cell)
    return env


def render(doc: dict[str, Any], fmt: str, out: Path) -> list[Path]:
    """Write the report files into ``out`` (created) and return their paths, sorted."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if fmt == "json":
        files["report.json"] = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "md":
        files["report.md"] = environment(False).get_template("report.md.j2").render(d=doc)
    else:
        env = environment(True)
        views = [slo_view(s, doc) for s in doc["slos"]]
        sparks = {(v["name"], *key): c for v in views for key, c in v["sparks"].items()}
        files["index.html"] = env.get_template("report_index.html.j2").render(
            d=doc, sparks=sparks)
        page = env.get_template("report_slo.html.j2")
        for v in views:
            files[page_name(v["name"])] = page.render(d=doc, s=v["slo"], v=v)
        if doc["auditor"] is not None:
            files["auditor.html"] = env.get_template("report_auditor.html.j2").render(d=doc)
    written = []
    for name, text in sorted(files.items()):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def page_name(slo: str) -> str:
    return f"slo-{slo}.html"


def _label(x: dict[str, Any], many_objectives: bool, alone: str) -> str:
    parts = [f"objective {x['objective']}"] if many_objectives else []
    if x["group"]:
        parts.append(x["group"])
    return ", ".join(parts) or alone


def _bands(chart: Chart, xs: TimeScale, s: dict[str, Any], t1: int) -> None:
    for c in s["corrections"]:
        for r in c["excluded"]:
            a, b = minute(r["from"]), minute(r["to"])
            chart.bands.append(_band(xs, a, b, "correction", f"correction: {c['reason']}"))
    # tickets first, pages drawn over them
    for a in sorted(s["alerts"], key=lambda a: a["severity"] == "page"):
        if a["firing_at"] is None:
            continue
        end = minute(a["resolved_at"]) if a["resolved_at"] else t1
        chart.bands.append(_band(xs, minute(a["firing_at"]), end, f"alert {a['severity']}",
                                 f"{a['tier']} ({a['severity']}) firing"))


def _band(xs: TimeScale, a: int, b: int, css: str, title: str) -> Band:
    x0 = xs.x(a)
    return Band(round(x0, 1), round(max(xs.x(b) - x0, 2.0), 1), css, title)


def slo_view(s: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Charts and tables of one SLO page (geometry only; the numbers are the document's)."""
    t0, t1 = minute(doc["period"]["from"]), minute(doc["period"]["to"])
    many_obj = len(s["objectives"]) > 1
    series = s["series"]
    targets = sorted({x["target"] for x in series} or {o["target"] for o in s["objectives"]})
    step = doc["period"]["step_minutes"]

    def lines(key: str, alone: str) -> list[tuple[str, list[tuple[int, float | None]]]]:
        return [(_label(x, many_obj, alone), [(minute(p["t"]), p[key]) for p in x["points"]])
                for x in series]

    win = lines("sli", f"SLI ({s['window']})")
    per_step = lines("step_sli", f"SLI per {minutes(step)}")
    budget = lines("remaining_ratio", "budget remaining")
    charts = []
    for title, y_title, data, include in (
            (f"SLI over the SLO window ({s['window']})", "SLI", win, targets),
            (f"SLI per {minutes(step)} step", "SLI", per_step, targets),
            ("Error budget remaining", "budget left", budget, [0.0, 1.0])):
        chart, xs, ys = line_chart(title, y_title, t0, t1, data, include=include)
        if ys is not None:
            if data is budget:
                chart.rules.append(Rule(round(ys.y(0.0), 1), "budget exhausted", "zero"))
            else:
                chart.rules.extend(Rule(round(ys.y(tg), 1), f"target {pct(tg, 2)}", "target")
                                   for tg in targets)
        _bands(chart, xs, s, t1)
        charts.append(chart)
    charts.append(_alert_chart(s, t0, t1))
    sparks = {}
    for x, (_, pts) in zip(series, budget, strict=True):
        spark, _, ys = line_chart("", "", t0, t1, [("", pts)], include=[0.0, 1.0])
        if ys is not None:
            spark.rules.append(Rule(round(ys.y(0.0), 1), "", "zero"))
        sparks[(x["objective"], x["group"])] = spark
    return {"name": s["name"], "slo": s, "charts": charts, "sparks": sparks,
            "page": page_name(s["name"]), "many_objectives": many_obj}


def _alert_chart(s: dict[str, Any], t0: int, t1: int) -> Chart:
    rows = []
    for tier in s["tiers"]:
        mine = [a for a in s["alerts"] if a["tier"] == tier["name"]]
        keys = sorted({(a["objective"], a["group"]) for a in mine}) or [("", "")]
        for obj, grp in keys:
            label = tier["name"] + "".join(f" · {p}" for p in (obj if len(
                s["objectives"]) > 1 else "", grp) if p)
            items = [(minute(a["pending_at"]),
                      minute(a["firing_at"]) if a["firing_at"] else None,
                      minute(a["resolved_at"]) if a["resolved_at"] else None, a["severity"],
                      f"{a['tier']} ({a['severity']}): pending {when(a['pending_at'])}, "
                      f"firing {when(a['firing_at'])}, resolved {when(a['resolved_at'])}")
                     for a in mine if (a["objective"], a["group"]) == (obj, grp)]
            rows.append((label, items))
    return timeline("Alerts (replayed at a 1-minute step)", t0, t1, rows)

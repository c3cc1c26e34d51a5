"""Notice → the wire format of each receiver (pure functions, golden-tested).

* Alertmanager API v2 ``postableAlert``: labels, annotations, startsAt, endsAt, generatorURL
  (alertmanager ``api/v2/openapi.yaml``). Label names must match ``[a-zA-Z_][a-zA-Z0-9_]*``.
* Slack incoming webhooks: ``text`` (the notification fallback) plus Block Kit ``blocks``.
* PagerDuty Events API v2 (``/v2/enqueue``): ``trigger`` with payload.summary/source/
  severity, ``resolve`` and ``acknowledge`` (acks.py) with the same ``dedup_key`` (the
  alert's dedup key).
* Webhook and file: the notice itself (``"schema": "sloengine.alert/v1"``).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sloengine.alerting.notice import (
    Notice,
    budget,
    details,
    iso,
    offender_text,
    percent,
    rate,
    span_of,
    summary,
    title,
)

ALERTNAME = "SLOErrorBudgetBurn"
_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    name = _LABEL.sub("_", key)
    return f"_{name}" if not name or name[0].isdigit() else name


def notice_json(n: Notice) -> dict[str, Any]:
    return asdict(n)


def alertmanager(n: Notice, now: datetime, firing_ttl: timedelta,
                 generator_url: str | None) -> dict[str, Any]:
    labels = {label_name(k): v for k, v in n.labels.items() if v != ""}
    labels["alertname"] = ALERTNAME
    annotations = {
        "summary": summary(n),
        "description": "\n".join(details(n)),
        "runbook_url": n.runbook or "",
        "slo_target": f"{n.target}",
        "burn_rate_threshold": f"{n.threshold}",
        "long_window": n.long_window,
        "short_window": n.short_window,
        "long_burn_rate": "" if n.long_burn_rate is None else f"{n.long_burn_rate}",
        "short_burn_rate": "" if n.short_burn_rate is None else f"{n.short_burn_rate}",
        "budget_remaining": percent(n.budget_remaining_ratio),
        "time_to_exhaustion": span_of(n.time_to_exhaustion_seconds),
        "top_offenders": offender_text(n.top_offenders) if n.status == "firing" else "",
        "exemplars": "\n".join(e.command for e in n.exemplars),
        "dedup_key": n.dedup_key,
        "idempotency_key": n.idempotency_key,
    }
    out: dict[str, Any] = {
        "labels": labels,
        "annotations": {k: v for k, v in annotations.items() if v != ""},
        "startsAt": n.starts_at,
        "endsAt": n.ends_at if n.status == "resolved" else iso(now + firing_ttl),
    }
    url = generator_url.replace("{slo}", n.slo) if generator_url else n.runbook
    if url:
        out["generatorURL"] = url
    return out


def slack(n: Notice) -> dict[str, Any]:
    icon = ":rotating_light:" if n.status == "firing" else ":white_check_mark:"
    fields = [
        f"*SLO*\n{n.slo} {n.objective}" + (f" [{n.group}]" if n.group else ""),
        f"*Severity / tier*\n{n.severity} / {n.tier}",
        f"*Burn rate {n.long_window} / {n.short_window}*\n{rate(n.long_burn_rate)} / "
        f"{rate(n.short_burn_rate)} (threshold {rate(n.threshold)})",
        f"*Error budget*\n{budget(n)}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(n)[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _esc(f)} for f in fields]},
    ]
    if n.status == "firing":
        lines = [f"*Top offenders ({n.short_window})*: {offender_text(n.top_offenders)}"]
        if n.trace_errors:
            lines.append(f"*Failing spans in those traces*: {offender_text(n.trace_errors)}")
        lines += [f"`{e.command}`  {e.route or ''} {e.time}" for e in n.exemplars]
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _esc("\n".join(lines))}})
    else:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"Resolved at {n.ends_at} (firing since {n.starts_at})"}})
    context = [f"dedup key `{n.dedup_key}`"]
    if n.runbook:
        context.insert(0, f"<{n.runbook}|Runbook>")
    blocks.append({"type": "context",
                   "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": f"{icon} {summary(n)}", "blocks": blocks}


def _esc(text: str) -> str:
    """Slack mrkdwn control characters (api.slack.com "Formatting text": escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pagerduty(n: Notice, routing_key: str, severity_map: dict[str, str]) -> dict[str, Any]:
    if n.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": n.dedup_key}
    if n.status == "acknowledged":  # an on-call engineer took it (acks.py)
        return {"routing_key": routing_key, "event_action": "acknowledge",
                "dedup_key": n.dedup_key}
    custom = {
        "slo": n.slo, "objective": n.objective, "target": n.target, "group": n.group,
        "tier": n.tier, "severity": n.severity, "window": n.window,
        "burn_rates": {n.long_window: n.long_burn_rate, n.short_window: n.short_burn_rate,
                       "threshold": n.threshold},
        "budget_remaining_ratio": n.budget_remaining_ratio,
        "time_to_exhaustion": span_of(n.time_to_exhaustion_seconds),
        "top_offenders": [asdict(o) for o in n.top_offenders],
        "trace_errors": [asdict(o) for o in n.trace_errors],
        "exemplars": [e.command for e in n.exemplars],
        "idempotency_key": n.idempotency_key,
        "details": details(n),
    }
    out: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": n.dedup_key,
        "payload": {
            "summary": summary(n)[:1024],
            "source": f"sloengine/{n.service}",
            "severity": severity_map.get(n.severity, "error"),
            "timestamp": n.at,
            "component": n.service,
            "group": n.team or n.service,
            "class": "slo-burn-rate",
            "custom_details": custom,
        },
        "client": "sloengine",
    }
    if n.runbook:
        out["links"] = [{"href": n.runbook, "text": "Runbook"}]
    return out

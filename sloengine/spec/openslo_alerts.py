"""OpenSLO alert policies and conditions → sloengine alert tiers (see :func:`_tier`)."""

from __future__ import annotations

import math
import re

from sloengine.spec.durations import format_duration, parse_duration
from sloengine.spec.importers import (
    Lines,
    Native,
    Source,
)
from sloengine.spec.openslo_model import (
    MINUTE,
    Index,
    OConditionSpec,
    OPolicySpec,
    OSLOSpec,
)


def _tiers(spec: OSLOSpec, sp: Source, idx: Index, lines: Lines) -> list[Native] | None:
    if not spec.alert_policies:
        return None  # sloengine's default policy (SRE workbook tiers for the period)
    tiers: list[Native] = []
    for i, item in enumerate(spec.alert_policies):
        at = sp.at("alertPolicies", i)
        if isinstance(item, str) or item.alert_policy_ref is not None:
            name = item if isinstance(item, str) else item.alert_policy_ref
            assert name is not None
            ref = idx.get("AlertPolicy", name)
            where = () if isinstance(item, str) else ("alertPolicyRef",)
            if ref is None:
                at.error(where, f"no AlertPolicy named {name!r} in this file")
                continue
            if ref.spec is None:
                at.error(where, f"AlertPolicy {name!r} has errors")
                continue
            policy, ps = ref.spec, ref.src.at("spec")
        elif item.spec is not None:
            policy, ps = item.spec, at.at("spec")
            name = item.metadata.name if item.metadata is not None else f"policy-{i}"
        else:
            at.error((), "give alertPolicyRef or an inline AlertPolicy (kind, metadata, spec)")
            continue
        _policy(policy, name, ps, idx, lines, tiers)
    return tiers


def _policy(policy: OPolicySpec, name: str, ps: Source, idx: Index, lines: Lines,
            tiers: list[Native]) -> None:
    if policy.alert_when_no_data:
        ps.warn(("alertWhenNoData",), "not imported: sloengine reports no data as a status and "
                "does not alert on it")
    if policy.alert_when_resolved is not None:
        ps.warn(("alertWhenResolved",), "not imported: resolution notices are a notifier "
                "setting in sloengine")
    if policy.notification_targets:
        ps.warn(("notificationTargets",), "notification targets are not imported: route "
                "alerts by severity and labels with sloengine notifiers")
    if not policy.conditions:
        ps.warn(("conditions",), f"AlertPolicy {name!r} has no conditions: it alerts on nothing")
    for j, c in enumerate(policy.conditions):
        at = ps.at("conditions", j)
        if c.condition_ref is not None:
            ref = idx.get("AlertCondition", c.condition_ref)
            if ref is None or ref.spec is None:
                what = "has errors" if ref is not None else "is not in this file"
                at.error(("conditionRef",), f"AlertCondition {c.condition_ref!r} {what}")
                continue
            cond, cs, cname = ref.spec, ref.src.at("spec"), c.condition_ref
        elif c.spec is not None:
            cond, cs = c.spec, at.at("spec")
            cname = c.metadata.name if c.metadata is not None else f"{name}-{j}"
        else:
            at.error((), "give conditionRef or an inline AlertCondition (kind, metadata, spec)")
            continue
        taken = {t["name"] for t in tiers}
        unique = cname if cname not in taken else f"{cname}-{len(tiers)}"
        tier = _tier(cond, cs, unique, policy.alert_when_breaching is not False)
        if tier is not None:
            n = ("spec", "alerting", "tiers", len(tiers))
            lines.mark(n, cs)
            for key, path in (("severity", ("severity",)), ("burnRate", ("condition", "threshold")),
                              ("longWindow", ("condition", "lookbackWindow")),
                              ("shortWindow", ("condition", "lookbackWindow")),
                              ("for", ("condition", "alertAfter"))):
                lines.mark((*n, key), cs, path)
            tiers.append(tier)


def _tier(spec: OConditionSpec, cs: Source, name: str, enabled: bool) -> Native | None:
    """An OpenSLO burn-rate condition → one multi-window tier: ``burnRate`` = threshold,
    ``longWindow`` = lookbackWindow, ``shortWindow`` = lookbackWindow / 12 (the SRE Workbook
    ratio, ch. 5 "Alerting on SLOs": 1h/5m, 6h/30m, 1d/2h, 3d/6h), rounded up to whole
    minutes, ``for`` = alertAfter, severity = the condition's severity. OpenSLO checks one
    window only, so every mapping is reported as approximate (the short window makes the tier
    reset quickly once the errors stop)."""
    c = spec.condition
    if c.kind.lower() != "burnrate":
        cs.error(("condition", "kind"), f"alert condition kind {c.kind!r} is not supported "
                 "(only burnrate)")
        return None
    try:
        long = parse_duration(c.lookback_window)
    except (ValueError, OverflowError) as exc:
        cs.error(("condition", "lookbackWindow"), f"lookbackWindow: {exc}")
        return None
    short = long / 12
    if short % MINUTE:
        short = MINUTE * math.ceil(short / MINUTE)
    if (c.op or "gt").lower() in ("lt", "lte"):
        cs.warn(("condition", "op"), f"op {c.op} read as gt: a tier fires when the burn rate "
                "exceeds the threshold")
    severity = spec.severity
    if not severity:
        cs.warn(("severity",), "no severity: 'page' assumed")
        severity = "page"
    tier: Native = {"name": name, "severity": severity, "longWindow": format_duration(long),
                    "shortWindow": format_duration(short), "burnRate": c.threshold}
    if c.alert_after is not None and not re.fullmatch(r"0+[a-zA-Z]*", c.alert_after):
        tier["for"] = c.alert_after
    if not enabled:
        tier["enabled"] = False
    cs.warn(("condition",), f"burn-rate condition {name!r} mapped approximately: OpenSLO "
            f"checks one window ({c.lookback_window}); sloengine also requires a short window "
            f"of {format_duration(short)} (lookbackWindow/12, SRE workbook) to exceed "
            f"{c.threshold:g}")
    return tier

"""Send every firing alert to Alertmanager again, every ``resend_every``.

Alertmanager holds alerts in memory only (its data directory keeps silences and the
notification log), so after a restart it knows nothing until clients send again; a firing
alert also expires at its ``endsAt``. Prometheus therefore re-sends every active alert each
``--rules.alert.resend-delay`` (1m) with a fresh ``endsAt`` (prometheus/rules/alerting.go,
``sendAlerts``). The outbox delivers each *transition* once (delivery.py); this pass is the
re-send of the *state*: for every Alertmanager target that is due, one POST with the latest
firing notice of each alert that is still firing and whose firing notice that target
already took (a notice still pending belongs to the outbox, not to the refresh).

A failed refresh changes no alert and no delivery: it is reported, its error kept in
``alert_refresh``, and tried again at the next pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sloengine.alerting.config import AlertmanagerTarget, NotifyConfig
from sloengine.alerting.notice import Notice, from_json
from sloengine.alerting.notifiers import AlertmanagerNotifier, DeliveryFailed, Notifier
from sloengine.alerting.outbox import load_target
from sloengine.errors import TerminalError
from sloengine.store import Store

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Refreshed:
    target: str
    alerts: int
    error: str | None = None


def due(store: Store, config: NotifyConfig, now: datetime) -> list[str]:
    """Alertmanager targets whose last accepted refresh is ``resend_every`` old (or that
    never had one), whose circuit breaker is not open."""
    last = dict(store.rows("SELECT target, refreshed_at FROM alert_refresh"))
    out = []
    for name, target in config.notifiers.items():
        if not isinstance(target, AlertmanagerTarget) or not target.resend_every:
            continue
        at = last.get(name)
        if at is not None and now - at < target.resend_every:
            continue
        open_until = load_target(store, name)[1]
        if open_until is not None and open_until > now:
            continue
        out.append(name)
    return out


def firing_notices(store: Store, target: str) -> list[Notice]:
    """The firing notice of each alert still firing, when it is the alert's latest
    notification and ``target`` has it delivered."""
    rows = store.rows(
        "SELECT n.notice FROM alert_notifications n "
        "JOIN alerts a ON a.dedup_key = n.dedup_key AND a.state = 'firing' "
        "WHERE n.notification_id = (SELECT max(m.notification_id) FROM alert_notifications m "
        "                           WHERE m.dedup_key = n.dedup_key "
        "                             AND m.to_state <> 'acknowledged') "
        "  AND n.to_state = 'firing' "
        "  AND EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.notification_id = "
        "              n.notification_id AND d.target = ? AND d.status = 'delivered') "
        "ORDER BY n.dedup_key", [target])
    return [from_json(r[0]) for r in rows]


def refresh_pass(store: Store, config: NotifyConfig, notifiers: Mapping[str, Notifier],
                 now: datetime) -> list[Refreshed]:
    """Re-send the firing alerts to every due Alertmanager target (one POST each)."""
    out = []
    for name in due(store, config, now):
        notifier = notifiers.get(name)
        if notifier is None:
            continue
        notices = firing_notices(store, name)
        error = None
        try:
            if isinstance(notifier, AlertmanagerNotifier):
                if notices:
                    notifier.send_many(notices)
            else:  # an in-memory twin in tests
                for n in notices:
                    notifier.send(n)
        except (DeliveryFailed, TerminalError) as exc:
            error = str(exc)
        except Exception as exc:  # a notifier bug must not stop the delivery job
            error = repr(exc)
        if error is None:
            store.exec_(
                "INSERT INTO alert_refresh VALUES (?, ?, ?, NULL) ON CONFLICT (target) DO "
                "UPDATE SET refreshed_at = excluded.refreshed_at, alerts = excluded.alerts, "
                "last_error = NULL", [name, now, len(notices)])
        else:
            store.exec_("UPDATE alert_refresh SET last_error = ? WHERE target = ?",
                        [error, name])
        out.append(Refreshed(name, len(notices), error))
    return out

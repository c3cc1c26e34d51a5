"""Where notifications go: named notifiers, a routing table and delivery policy, as strict
pydantic models read once at the front door (ARCHITECTURE.md rules 3 and 8: the ``kind`` of a
notifier picks one of the built-in protocol implementations, never a class name).

Example (``notify.yaml``)::

    notifiers:
      oncall: {kind: pagerduty, routing_key: "<events v2 integration key>"}
      edge-slack: {kind: slack, url: "https://hooks.slack.com/services/..."}
      am: {kind: alertmanager, url: "http://127.0.0.1:9093"}
      audit-log: {kind: file, path: alerts.jsonl}
    routes:                      # first match wins; continue: true keeps matching
      - {match: {severity: page}, notifier: [oncall, am], continue: true}
      - {match: {team: edge}, notifier: edge-slack}
    default: [audit-log]         # when no route matched
    retry: {attempts: 3, initial: 1s, max: 5m, jitter: 1s}
    breaker: {failures: 5, reset_after: 1m}
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from sloengine.errors import ConfigError
from sloengine.spec.durations import Duration


def _zero(v: Any) -> Any:
    return timedelta(0) if v in (0, "0", "0s") else v


#: a duration that may also be zero ("0s"): no jitter
MaybeZero = Annotated[Duration, BeforeValidator(_zero)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AlertmanagerTarget(_Strict):
    """Alertmanager API v2 (``POST {url}/api/v2/alerts``)."""

    kind: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")
    #: A firing alert is sent with endsAt = send time + this; sloengine resolves explicitly
    #: (endsAt = the resolving evaluation), so this only bounds a forgotten alert.
    firing_ttl: Duration = timedelta(hours=24)
    #: Every firing alert is sent again this often (``0s``: never). Alertmanager keeps
    #: alerts in memory, so after a restart it only knows what clients send again; this is
    #: Prometheus' ``--rules.alert.resend-delay`` (default 1m) for sloengine's alerts.
    resend_every: MaybeZero = timedelta(minutes=1)
    #: generatorURL; ``{slo}`` is replaced by the SLO name. Default: the SLO's runbook.
    generator_url: str | None = None


class WebhookTarget(_Strict):
    """Any HTTP endpoint: the notice as JSON, signed (``X-Sloengine-Signature: sha256=<hex>``,
    HMAC-SHA256 of the raw body) and keyed (``Idempotency-Key``)."""

    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr
    headers: dict[str, str] = Field(default_factory=dict)


class SlackTarget(_Strict):
    """A Slack incoming webhook (the URL is the credential)."""

    kind: Literal["slack"]
    url: SecretStr


PdSeverity = Literal["critical", "error", "warning", "info"]


def _pd_severities() -> dict[str, PdSeverity]:
    return {"page": "critical", "ticket": "warning"}


class PagerDutyTarget(_Strict):
    """PagerDuty Events API v2: trigger/resolve with the alert's dedup key."""

    kind: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = Field(default="https://events.pagerduty.com/v2/enqueue", pattern=r"^https?://")
    #: alert severity → PagerDuty severity (critical, error, warning, info)
    severity_map: dict[str, PdSeverity] = Field(default_factory=_pd_severities)


class ConsoleTarget(_Strict):
    """The human-readable notice (summary and details) on the console."""

    kind: Literal["console"]
    stream: Literal["stdout", "stderr"] = "stdout"
    #: False: the one-line summary only.
    details: bool = True


class FileTarget(_Strict):
    """JSON Lines appended to a file, or ``-`` for standard output (the console)."""

    kind: Literal["file"]
    path: str = "-"


Target = Annotated[AlertmanagerTarget | WebhookTarget | SlackTarget | PagerDutyTarget
                   | FileTarget | ConsoleTarget, Field(discriminator="kind")]


class Route(_Strict):
    """Labels that must all match (a value or a list of accepted values) → notifiers."""

    match: dict[str, str | list[str]] = Field(default_factory=dict)
    notifier: str | list[str]
    continue_: bool = Field(default=False, alias="continue")

    def targets(self) -> list[str]:
        return [self.notifier] if isinstance(self.notifier, str) else list(self.notifier)

    def matches(self, labels: dict[str, str]) -> bool:
        for key, want in self.match.items():
            have = labels.get(key)
            if have is None or (have != want if isinstance(want, str) else have not in want):
                return False
        return True


class RetryPolicy(_Strict):
    """Exponential backoff with jitter: wait initial × 2^n + U(0, jitter), at most max
    (tenacity ``wait_exponential_jitter``). ``attempts`` per delivery pass; a notification
    that still fails stays pending and is retried by later passes on the same schedule."""

    attempts: int = Field(default=3, ge=1, le=20)
    initial: Duration = timedelta(seconds=1)
    max: Duration = timedelta(minutes=5)
    jitter: MaybeZero = timedelta(seconds=1)

    def backoff(self, n: int, jitter: float) -> timedelta:
        """The wait after the n-th failure (n ≥ 1); ``jitter`` is a draw from [0, 1)."""
        base = self.initial.total_seconds() * 2 ** min(n - 1, 30)
        wait = base + jitter * self.jitter.total_seconds()
        return timedelta(seconds=min(wait, self.max.total_seconds()))


class BreakerPolicy(_Strict):
    """Per target: this many failed attempts in a row open the circuit for ``reset_after``;
    then one trial attempt closes it again or re-opens it."""

    failures: int = Field(default=5, ge=1)
    reset_after: Duration = timedelta(minutes=1)


class NotifyConfig(_Strict):
    notifiers: dict[str, Target] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    default: list[str] = Field(default_factory=list)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    #: one HTTP request (connect + response)
    timeout: Duration = timedelta(seconds=10)
    #: a delivery pass stops starting new sends after this (a slow target stays pending)
    pass_deadline: Duration = timedelta(minutes=1)
    #: notifications per target per pass
    batch: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _known(self) -> NotifyConfig:
        for i, r in enumerate(self.routes):
            for name in r.targets():
                if name not in self.notifiers:
                    raise ValueError(f"routes[{i}]: unknown notifier {name!r}")
        for name in self.default:
            if name not in self.notifiers:
                raise ValueError(f"default: unknown notifier {name!r}")
        return self

    def route(self, labels: dict[str, str]) -> list[str]:
        """The notifiers for an alert's labels: matching routes in order (the first match
        ends the walk unless it says ``continue``), else the default route."""
        out: list[str] = []
        for r in self.routes:
            if r.matches(labels):
                out.extend(t for t in r.targets() if t not in out)
                if not r.continue_:
                    break
        return out or list(self.default)


def load_notify_config(path: Path) -> NotifyConfig:
    """Parse a notify file; errors name the file and the field."""
    if not path.exists():
        raise ConfigError("notification config not found", where=str(path))
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("notification config must be a mapping", where=str(path))
    try:
        return NotifyConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"], where=f"{path}: {loc}" if loc else str(path)) from None

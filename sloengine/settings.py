"""Engine settings: one file (``sloengine.yaml``) plus ``SLOENGINE_*`` environment variables,
validated once at the front door (ARCHITECTURE.md rule 6). Environment wins over the file.

Nested fields use ``__`` in variable names, e.g. ``SLOENGINE_REDACTION__KEY``.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sloengine.errors import ConfigError
from sloengine.sources import PrometheusSettings

DEFAULT_SETTINGS_FILE = "sloengine.yaml"
_FILE_DATA: ContextVar[dict[str, Any]] = ContextVar("_FILE_DATA", default={})  # noqa: B039


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatternRule(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_\-]+$")
    regex: str


class RedactionSettings(_Strict):
    """Redaction at ingest (see sloengine/ingest/redact.py)."""

    enabled: bool = True
    #: HMAC key for tokens. Unset: a random per-database key is made and kept in the DB.
    key: SecretStr | None = None
    #: Attribute keys whose whole value is replaced (case-insensitive), added to the defaults.
    keys: list[str] = Field(default_factory=list)
    patterns: list[PatternRule] = Field(default_factory=list)
    use_default_rules: bool = True


class AccessLogSettings(_Strict):
    """Field mapping of non-OTLP JSON-lines access logs."""

    timestamp: str = "ts"
    method: str | None = "method"
    route: str | None = "route"
    path: str | None = "path"
    status: str = "status"
    latency: str | None = "latency_ms"
    latency_unit: str = Field(default="ms", pattern=r"^(ns|us|ms|s)$")
    trace_id: str | None = "trace_id"
    span_id: str | None = "span_id"
    correlation_id: str | None = "request_id"
    service: str | None = "service"
    default_service: str = "api-gateway"


class RetentionSettings(_Strict):
    """Days each kind of record is kept (0: forever). SLO buckets, evaluations, alerts, lineage
    batches and the audit trail are not raw signals and stay."""

    spans_days: int = Field(default=30, ge=0)
    logs_days: int = Field(default=30, ge=0)
    metric_points_days: int = Field(default=30, ge=0)
    dead_letters_days: int = Field(default=90, ge=0)


class ScheduleSettings(_Strict):
    """How often each job of ``sloengine run`` runs (seconds)."""

    ingest_seconds: float = Field(default=30, gt=0)
    evaluate_seconds: float = Field(default=60, gt=0)
    deliver_seconds: float = Field(default=10, gt=0)
    report_seconds: float = Field(default=3600, gt=0)
    #: Index new batches for request lookups (store/layout.py).
    optimize_seconds: float = Field(default=600, gt=0)
    retention_seconds: float = Field(default=86400, gt=0)
    #: Grace for a job that starts late (APScheduler misfire_grace_time).
    misfire_grace_seconds: float = Field(default=30, ge=1)


class HttpSettings(_Strict):
    """The OTLP/HTTP receiver that ``sloengine run`` serves (sloengine/api/)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=4318, ge=1, le=65535)
    #: Largest request body, before and after gzip (bigger: 413).
    max_body_bytes: int = Field(default=16 << 20, ge=1024)
    #: Accepted batches wait here, fsync'd, until the single writer stores them.
    #: Unset: ``<db>.spool`` beside the database file.
    spool_dir: Path | None = None
    #: A full spool answers 429 with Retry-After (backpressure, not loss).
    spool_max_bytes: int = Field(default=256 << 20, ge=1)
    spool_max_batches: int = Field(default=10_000, ge=1)
    #: The drain job wakes when a batch is spooled, and at least this often (seconds).
    drain_seconds: float = Field(default=1.0, gt=0)
    retry_after_seconds: int = Field(default=1, ge=0)
    #: Worker processes that decode request bodies (off the server's GIL); unset: one per
    #: CPU; 0: decode in the server process. Too many bodies in flight: 503 + Retry-After.
    decode_workers: int | None = Field(default=None, ge=0, le=64)
    #: Every route but /healthz needs an API key (``sloengine keys create``); false only
    #: for a trusted loopback setup (the OTLP receiver then takes anyone's data).
    auth: bool = True
    #: HTTPS when both are set (PEM files; uvicorn ssl_certfile / ssl_keyfile).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Client addresses or networks (CIDR) allowed to connect; empty: any.
    allow_ips: list[str] = Field(default_factory=list)
    #: Token bucket per API key: requests per second and burst (429 with Retry-After).
    rate_per_second: float = Field(default=20, gt=0)
    rate_burst: int = Field(default=40, ge=1)
    #: The same for the OTLP routes, whose exporters send many small batches.
    ingest_rate_per_second: float = Field(default=1000, gt=0)
    ingest_rate_burst: int = Field(default=2000, ge=1)
    #: Largest /api request body (bigger: 413); seconds an /api call may take (then 503).
    api_max_body_bytes: int = Field(default=1 << 20, ge=1024)
    api_timeout_seconds: float = Field(default=60, gt=0)
    #: Serve the Swagger UI at /api/v1/docs (off in production).
    docs: bool = False


class Settings(BaseSettings):
    """Everything the engine needs to know, with defaults that work on a fresh clone."""

    model_config = SettingsConfigDict(
        env_prefix="SLOENGINE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    db: Path = Path("sloengine.duckdb")
    #: Encrypt the DuckDB file (AES-256-GCM, store/crypt.py) with this key; set it in the
    #: environment (SLOENGINE_DB_ENCRYPTION_KEY), never in a file. Never logged.
    db_encryption_key: SecretStr | None = None
    #: Let DuckDB write encrypted files with its built-in mbedTLS when the httpfs extension
    #: (OpenSSL) is not installed: for tests only (its nonces are not secure random).
    db_encryption_unsafe_mbedtls: bool = False
    slo_dir: Path = Path("slo_definitions")
    #: Folders and files ingested by ``sloengine run``.
    inputs: list[Path] = Field(default_factory=lambda: [Path("sample_data")])
    reports_dir: Path = Path("reports")
    #: Notifiers and routes (sloengine/alerting/config.py). Without the file: the console
    #: (one line per alert) and reports_dir/alerts.jsonl (the full notice).
    notify_file: Path = Path("notify.yaml")
    correlation_keys: list[str] = Field(
        default_factory=lambda: [
            "correlation.id", "correlation_id", "http.request.header.x-correlation-id",
            "http.request.header.x-request-id", "x-request-id", "request.id",
        ]
    )
    #: Records per chunk (one transaction each). 122,880 is one DuckDB row group: commits
    #: then write whole row groups instead of rewriting a partial one (benchmarks/README.md).
    chunk_records: int = Field(default=122_880, ge=100, le=5_000_000)
    #: Worker processes that decode big input files while the writer stores (0: one per
    #: CPU; 1: decode in the writer's process). Small files are decoded in-process
    #: (sloengine/ingest/parallel.py); OTLP/HTTP bodies have ``http.decode_workers``.
    ingest_workers: int = Field(default=0, ge=0, le=64)
    #: DuckDB checkpoints the write-ahead log into the file once it is this large. DuckDB's
    #: 16 MB made nearly every commit of a spool-drain group a checkpoint; 256MB halves the
    #: writer's commit cost (benchmarks/README.md, receiver). A crash replays at most this
    #: much WAL on the next open.
    db_checkpoint_threshold: str = Field(default="256MB",
                                         pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)$")
    #: Late data older than this (behind the newest bucket of an SLO) no longer updates it.
    lateness_minutes: int = Field(default=7 * 24 * 60, ge=0)
    #: Incidents (time ranges) that ``replay`` scores detection against.
    incidents_file: Path | None = Path("sample_data/incidents.json")
    schedule: ScheduleSettings = ScheduleSettings()
    retention: RetentionSettings = RetentionSettings()
    #: The engine's own Prometheus metrics on 127.0.0.1:<port>/metrics (0: off).
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    #: OTLP/HTTP receiver (POST /v1/traces, /v1/logs, /v1/metrics) of ``sloengine run``.
    http: HttpSettings = HttpSettings()
    #: "json" for structured logs, "text" for people, "auto": JSON unless stderr is a TTY.
    log_format: str = Field(default="auto", pattern=r"^(auto|json|text)$")
    #: Where PromQL SLIs are pulled from (sloengine/sources/prometheus.py).
    prometheus: PrometheusSettings = PrometheusSettings()
    redaction: RedactionSettings = RedactionSettings()
    access_log: AccessLogSettings = AccessLogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


class _FileSource(PydanticBaseSettingsSource):
    """The settings file: below the environment, above the defaults."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return _FILE_DATA.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get())


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (or ./sloengine.yaml when present), then the environment, then overrides.

    A bad setting raises ConfigError with one clear line naming the file and the field.
    """
    file = path if path is not None else Path(DEFAULT_SETTINGS_FILE)
    data: dict[str, Any] = {}
    if path is not None and not file.exists():
        raise ConfigError("settings file not found", where=str(file))
    if file.exists():
        import yaml  # here, not at the top: most runs have no settings file to parse

        try:
            loaded = yaml.safe_load(file.read_text("utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", where=str(file)) from None
        if not isinstance(loaded, dict):
            raise ConfigError("settings must be a mapping", where=str(file))
        data.update(loaded)
    token = _FILE_DATA.set(data)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = f"{file}: {field}" if file.exists() else field
        raise ConfigError(err["msg"], where=where) from None
    finally:
        _FILE_DATA.reset(token)

"""The one place gridpulse reads its environment.

Every setting has the prefix ``GRIDPULSE_`` (``GRIDPULSE_KAFKA_BOOTSTRAP=broker:9092``). The
defaults point at the local stack that ``make up`` starts; everything else in gridpulse takes
its configuration as arguments.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SecretFileError(ValueError):
    """A secret's file setting names a file that cannot be read (the text names the setting and
    the path, never a secret)."""


def read_secret_file(setting: str, path: str) -> str:
    """The secret in ``path`` (its first line, without the line end), for the setting ``setting``
    (its field name); a clear :class:`SecretFileError` when it is missing, unreadable or empty."""
    var = f"GRIDPULSE_{setting.upper()}"
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise SecretFileError(f"{var}={path}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SecretFileError(f"{var}={path}: the file is not UTF-8 text") from None
    if not value:
        raise SecretFileError(f"{var}={path}: the file is empty")
    return value


def mask_url_password(url: str) -> str:
    """``scheme://user:***@host...`` for logs: the password of a URL masked, also one with
    unencoded ':' '/' '@' in it (everything up to the last '@' is taken as the user part)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, host = rest.rsplit("@", 1)
    if ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDPULSE_", env_file=".env", extra="ignore")

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="comma-separated host:port list")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: str | None = Field(
        None,
        description="a file holding the SASL password (read at each use; instead of kafka_sasl_password)",
    )
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    topic_partitions: int = Field(4, ge=1, description="partitions of every topic gridpulse creates")
    topic_replication: int = Field(1, ge=1)
    gc_gen0_threshold: int = Field(
        50_000, ge=0, description="worker: allocations between young-generation GC runs (0 = Python's 700)"
    )
    kafka_session_timeout_s: float = Field(
        10.0,
        ge=6.0,  # the broker's group.min.session.timeout.ms
        description="consumer-group session timeout: how long a dead worker holds its partitions",
    )
    topic_prefix: str = Field("", description="prefix for every topic name (test isolation)")

    # --- Faust worker ------------------------------------------------------------------------
    app_id: str = "gridpulse"
    data_dir: str = Field(".run/faust", description="RocksDB state and faust data directory")
    web_port: int = 6066
    web_bind: str = Field(
        "127.0.0.1",
        description="worker: address its web server (/metrics, /livez, /readyz) listens on; 0.0.0.0 "
        "for probes from other hosts (containers)",
    )
    ready_max_lag: int = Field(
        100_000,
        ge=0,
        description="worker: /readyz fails while the input partitions are more records behind than this "
        "(a worker loading history is alive but not ready)",
    )
    rocksdb_block_cache_mb: int = Field(32, ge=1, description="RocksDB block cache shared by all stores")
    rocksdb_write_buffer_mb: int = Field(8, ge=1)

    # --- stream processing --------------------------------------------------------------------
    batch_max: int = Field(4_000, ge=1, description="readings per batch (one state write per customer)")
    batch_within_s: float = Field(
        0.05, gt=0, description="longest wait to fill a batch while caught up, seconds"
    )
    batch_catchup_s: float = Field(
        2.0, gt=0, description="longest wait to fill a batch while behind by batch_catchup_lag readings"
    )
    batch_catchup_lag: int = Field(5_000, ge=1, description="readings behind that make a batch wait longer")
    area_batch_within_s: float = Field(
        10.0,
        gt=0,
        description="inspection: the area agents' batch window, seconds (an area is judged once its "
        "input has settled for this + 5 s)",
    )
    lateness_s: int = Field(48 * 3600, ge=0, description="out-of-order readings accepted up to this age")
    future_tolerance_s: int = Field(300, ge=0, description="clock skew allowed on reading timestamps")
    gap_report_days: int = Field(3, ge=0, description="days of interval gaps listed in stats.customer")
    aging_interval_s: float = Field(300.0, gt=0, description="how often overdue ages are re-evaluated")
    scoring_interval_s: float = Field(
        300.0,
        gt=0,
        description="how often the scoring population (breakpoints, totals, tier cuts) is recomputed",
    )
    scoring_growth_rerun: float = Field(
        0.5,
        gt=0,
        description="a pass runs before the interval is up once the population has grown by this share "
        "since the last pass (a new deployment's first customers do not set the breakpoints for long)",
    )
    scoring_min_gap_s: float = Field(
        2.0, ge=0, description="shortest time between two population passes (and after a failed one)"
    )
    scoring_model_path: str | None = Field(
        None, description="scoring model config (.json or .toml, scoring.load_config); default: the article's"
    )

    # --- credit warnings (alerts.credit; DOMAIN.md section 4) ------------------------------
    credit_overdue_major_days: int = Field(
        30, ge=0, description="major when the oldest bill is more days overdue"
    )
    credit_overdue_critical_days: int = Field(
        90, ge=0, description="critical when the oldest bill is more days overdue"
    )
    credit_late_fees_12m: int = Field(2, ge=1, description="major from this many late fees within 12 months")
    credit_reversals_12m: int = Field(
        2, ge=1, description="major from this many payment reversals within 12 months"
    )
    credit_theft_12m_cny: float = Field(
        50_000.0, ge=0, description="critical when theft penalties exceed this, 12 months"
    )
    credit_state_wait_s: float = Field(
        60.0, gt=0, description="longest wait at start for the open alerts read back from alerts.credit"
    )
    # when and how long (alerts.credit_rules: why these defaults)
    credit_recent_days: float = Field(
        7.0,
        gt=0,
        description="a customer whose newest billing event is older than this is not judged at once: "
        "its history is loading; its state changes silently until it settles",
    )
    credit_settle_s: float = Field(
        30.0, ge=0, description="quiet time after a customer's last old billing input before it is judged"
    )
    credit_open_hold_s: float = Field(
        30.0, ge=0, description="a worse alert state (open, escalate) must hold this long to be published"
    )
    credit_resolve_hold_s: float = Field(
        3600.0, ge=0, description="a better alert state (resolve, lower) must hold this long to be published"
    )
    credit_flap_transitions: int = Field(
        4, ge=2, description="this many opens/resolves within the flap window: the alert is flapping"
    )
    credit_flap_window_s: float = Field(7 * 86400.0, gt=0, description="the flap detection window")
    credit_flap_quiet_s: float = Field(
        86400.0, ge=0, description="a flapping alert is held until its condition is steady this long"
    )
    credit_evidence_change: float = Field(
        0.2,
        gt=0,
        description="an open alert is re-published when an amount of its evidence moves by this share",
    )

    # --- outages (alerts.outage, reliability.indices; DOMAIN.md section 5) ------------------
    outage_view_wait_s: float = Field(
        30.0,
        gt=0,
        description="longest wait, per outage event, for the outage view (customers, stats, outages) "
        "to read what was written before the event; then the event is decided on what the view has",
    )

    # --- Redis / PostgreSQL ------------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    pg_dsn: SecretStr = SecretStr("postgresql://gridpulse@127.0.0.1:5432/gridpulse")
    pg_password_file: str | None = Field(
        None,
        description="a file holding the password of pg_dsn's user (read at each use; the DSN without it)",
    )

    # --- alert store and notification (gridpulse alerts-consumer) -----------------------------
    alerts_group: str | None = Field(None, description="consumer group; default f'{app_id}-alerts'")
    alerts_batch_max: int = Field(500, ge=1, description="alert messages stored per transaction")
    alerts_db_backoff_max_s: float = Field(30.0, gt=0, description="longest wait between DB reconnects")
    alerts_notifier: str = Field("log", description="log, webhook, or package.module:factory(settings)")
    alerts_webhook_url: SecretStr | None = Field(None, description="URL the webhook notifier POSTs to")
    alerts_webhook_timeout_s: float = Field(10.0, gt=0, description="one webhook request, seconds")
    alerts_webhook_attempts: int = Field(6, ge=1, description="attempts per notification before giving up")
    alerts_webhook_backoff_s: float = Field(1.0, gt=0, description="first retry delay (doubles, jittered)")
    alerts_webhook_backoff_max_s: float = Field(60.0, gt=0, description="longest retry delay")
    alerts_notify_concurrency: int = Field(16, ge=1, description="notifications in flight at once")
    alerts_ops_bind: str = Field(
        "127.0.0.1", description="alerts consumer: address of /metrics /livez /readyz (0.0.0.0 in containers)"
    )
    alerts_ops_port: int = Field(
        6067, ge=0, le=65535, description="alerts consumer: port of /metrics /livez /readyz (0: any free)"
    )
    alerts_ready_max_lag: int = Field(
        5_000, ge=0, description="alerts consumer: /readyz fails while more alert messages than this wait"
    )

    # --- dashboard (gridpulse dashboard, issue 14) ---------------------------------------------
    dashboard_host: str = Field("127.0.0.1", description="dashboard: address to listen on")
    dashboard_port: int = Field(8080, ge=0, le=65535, description="dashboard: port to listen on")
    dashboard_users: list[dict[str, Any]] | None = Field(
        None,
        description='dashboard users as JSON: [{"user", "password_hash" (gridpulse dashboard '
        'hash-password), "role": viewer|manager|supervisor, "manager_id" (managers)}]',
    )
    dashboard_users_file: str | None = Field(None, description="dashboard: a file with the users' JSON")
    dashboard_secret: SecretStr | None = Field(
        None, description="dashboard: session cookie signing key; unset: random per process"
    )
    dashboard_session_hours: float = Field(12.0, gt=0, description="dashboard: a session's lifetime")
    dashboard_client_queue: int = Field(
        10_000, ge=1, description="dashboard: per-client coalescing queue bound (keys) before a reset"
    )
    dashboard_ready_max_lag: int = Field(
        10_000, ge=0, description="dashboard: /readyz fails while the feed is more records than this behind"
    )

    # --- logs --------------------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        "text",
        description="every process's log lines: text, or json (one JSON object a line: ts, level, "
        "logger, msg, service, pid, topic/partition/offset where a message is concerned; "
        "observability.logs)",
    )

    # --- domain ------------------------------------------------------------------------------
    timezone: str = Field("Asia/Shanghai", description="local zone for days and billing months")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        ZoneInfo(v)  # raises a clear ZoneInfoNotFoundError for a typo
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def alerts_group_id(self) -> str:
        return self.alerts_group or f"{self.app_id}-alerts"

    def topic(self, name: str) -> str:
        """The real topic name of a contract topic (with the deployment's prefix)."""
        return f"{self.topic_prefix}{name}"

    def kafka_password(self) -> str | None:
        """The SASL password: kafka_sasl_password, or the content of kafka_sasl_password_file
        (read now, so a rotated file is used by the next client made)."""
        if self.kafka_sasl_password is not None and self.kafka_sasl_password_file:
            raise SecretFileError(
                "both GRIDPULSE_KAFKA_SASL_PASSWORD and GRIDPULSE_KAFKA_SASL_PASSWORD_FILE are set: set one"
            )
        if self.kafka_sasl_password_file:
            return read_secret_file("kafka_sasl_password_file", self.kafka_sasl_password_file)
        return self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every Kafka client (SSL, SASL_SSL): the CAs of kafka_ssl_cafile
        (the system's when unset), hostname checked, a client certificate when one is set."""
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        except (OSError, ssl.SSLError) as exc:
            raise SecretFileError(
                f"GRIDPULSE_KAFKA_SSL_CAFILE={self.kafka_ssl_cafile}: cannot load CA certificates: {exc}"
            ) from None
        if self.kafka_ssl_certfile:
            try:
                ctx.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
            except (OSError, ssl.SSLError) as exc:
                raise SecretFileError(
                    f"GRIDPULSE_KAFKA_SSL_CERTFILE={self.kafka_ssl_certfile} / GRIDPULSE_KAFKA_SSL_KEYFILE="
                    f"{self.kafka_ssl_keyfile}: cannot load the client certificate: {exc}"
                ) from None
        return ctx

    def aiokafka_security(self) -> dict[str, object]:
        """Keyword arguments for aiokafka clients carrying the SASL/SSL options (the password
        file, when set, is read now)."""
        kw: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            kw["sasl_mechanism"] = self.kafka_sasl_mechanism
            kw["sasl_plain_username"] = self.kafka_sasl_username
            kw["sasl_plain_password"] = self.kafka_password()
        ctx = self.kafka_ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        return kw

    def pg_password(self) -> str | None:
        """The PostgreSQL password from pg_password_file (read now), or None: then the DSN's own,
        or none."""
        if self.pg_password_file:
            return read_secret_file("pg_password_file", self.pg_password_file)
        return None

    def pg_connect_dsn(self) -> str:
        """pg_dsn with the password of pg_password_file put in, for asyncpg.connect/create_pool
        (pg_dsn itself when no file is set). Never log it."""
        dsn = self.pg_dsn.get_secret_value()
        password = self.pg_password()
        if password is None:
            return dsn
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
            raise SecretFileError(
                "GRIDPULSE_PG_PASSWORD_FILE needs GRIDPULSE_PG_DSN as a postgresql://user@host:port/db URL"
            )
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(unquote(user), safe='')}:{quote(password, safe='')}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    def pg_dsn_display(self) -> str:
        """pg_dsn for logs: any password in it replaced by ***."""
        return mask_url_password(self.pg_dsn.get_secret_value())

    def redis_url_display(self) -> str:
        """redis_url for logs: any password in it replaced by ***."""
        return mask_url_password(self.redis_url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

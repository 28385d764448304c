"""Service settings: read once from environment variables (pydantic-settings).

Every tunable of the service lives here, so the settings table in docs/service.md, the
Kubernetes ConfigMaps and the test harness all speak the same names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A secret shorter than this is refused in production: HMAC-SHA256 (JWT HS256, webhook
# signatures) wants a key of >= 256 bits.
MIN_SECRET_LENGTH = 32
_KNOWN_WEAK_SECRETS = frozenset({"changeme", "secret", "dev-secret", "please-change-me"})


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    CI = "ci"
    DEV = "dev"
    PREVIEW = "preview"
    STAGING = "staging"
    PROD = "prod"

    @property
    def is_production_like(self) -> bool:
        """Deployed environments where secrets must be real and test switches stay off."""
        return self in {Environment.STAGING, Environment.PROD}

    @property
    def is_deployed(self) -> bool:
        """Reachable by others (previews are internet-facing): no weak secret, no trust in every proxy."""
        return self in {Environment.DEV, Environment.PREVIEW, Environment.STAGING, Environment.PROD}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Environment = Environment.LOCAL
    service_name: str = "reference-service"
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # --- persistence ---
    database_url: str = "sqlite+aiosqlite:///./reference-service.db"
    db_pool_size: int = Field(default=10, ge=1)
    # No overflow by default: under sustained load SQLAlchemy's QueuePool closes an overflow
    # connection as soon as it is handed back to a full pool and opens another for the next
    # request (a PostgreSQL backend forked per request beyond the pool; 6 % of a list request's
    # CPU in py-spy). With 0, list throughput x1.13 in an A/B (6 alternating rounds).
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    db_echo: bool = False
    # `python -m app.migrate` connects as the migrator role (owns the schema, runs DDL); the
    # DATABASE_URL role has DML only. Unset: DATABASE_URL (refused in staging and prod).
    migration_database_url: str | None = None
    # DDL waits at most this long for a table lock (an ALTER queued behind a long transaction
    # would block every query behind it), then the whole migration is retried.
    migration_lock_timeout_ms: int = Field(default=5000, ge=1)
    migration_statement_timeout_ms: int = Field(default=120_000, ge=0)
    migration_lock_attempts: int = Field(default=5, ge=1)
    migration_retry_delay_seconds: float = Field(default=2.0, ge=0)

    # --- redis (optional: in-process fallbacks when unset) ---
    redis_url: str | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0)

    # --- auth ---
    jwt_secret: SecretStr | None = None
    # HMAC only: the key is one shared secret ("none" and the RS/ES families are refused).
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "reference-service"
    jwt_audience: str = "reference-service-api"
    access_token_ttl_seconds: int = Field(default=3600, ge=60)
    cookie_name: str = "access_token"
    cookie_secure: bool = True
    # One argon2id hash at a time: the API pods' CPU limit is one core or less, so a second
    # concurrent hash adds no logins/s (39 vs 39 req/s, API on one core) but keeps a second
    # 19 MiB block in glibc for the next login (RSS after a login burst 124 -> 105 MB).
    password_hash_concurrency: int = Field(default=1, ge=1)
    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    # --- HTTP edge ---
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    # Peers whose X-Forwarded-For/-Proto are believed (IPs or CIDRs, comma-separated; empty:
    # none). Kubernetes overlays set the gateway's pod range; '*' is refused where deployed.
    forwarded_allow_ips: str = "127.0.0.1"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # How long an idle keep-alive connection stays open. It must outlast the idle timeout of
    # whatever reuses connections in front (the gateway's upstream pool, a client pool): when the
    # server closes first, a request sent on the connection at that moment is lost ("server
    # disconnected without sending a response"). uvicorn's own default is 5 s.
    keep_alive_timeout_seconds: int = Field(default=75, ge=1)
    # The server's own bounds, so the port is safe without a proxy in front: a request line
    # plus headers over HTTP_MAX_HEAD_BYTES gets 431, a request not fully received within
    # HTTP_REQUEST_TIMEOUT_SECONDS of its first byte (or a new connection that sends nothing)
    # gets 408 and is closed.
    http_max_head_bytes: int = Field(default=32 * 1024, ge=1024)
    http_request_timeout_seconds: float = Field(default=20.0, gt=0)
    # /docs and /openapi.json; the prod and staging overlays set it to false.
    docs_enabled: bool = True

    # --- abuse protection ---
    rate_limit_enabled: bool = True
    rate_limit_login: str = "5/minute"
    # Login attempts on one account from every address together (NIST 800-63B 5.2.2: at most
    # 100 failed attempts): a botnet spread over many IPs still guesses slowly.
    rate_limit_login_account: str = "100/hour"
    rate_limit_write: str = "60/minute"
    rate_limit_read: str = "600/minute"
    # Account creation per client IP, on top of the write limit.
    rate_limit_register: str = "20/hour"
    # After a Redis error the limiter uses per-process memory this long before trying Redis again.
    rate_limit_redis_retry_seconds: float = Field(default=5.0, gt=0)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)

    # --- observability ---
    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = None
    metrics_enabled: bool = True

    # --- lifecycle ---
    # SIGTERM: readiness turns 503 at once, the server keeps serving this long so load
    # balancers stop routing here, then stops accepting and drains in-flight requests for
    # at most DRAIN_TIMEOUT_SECONDS. Both together must stay under the pod's
    # terminationGracePeriodSeconds.
    shutdown_delay_seconds: float = Field(default=5.0, ge=0)
    drain_timeout_seconds: float = Field(default=20.0, ge=0)
    readiness_check_timeout_seconds: float = Field(default=1.0, gt=0)

    # --- outbox worker ---
    webhook_url: str | None = None
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    # Key of the deliveries' Webhook-Signature (app/outbox/webhook.py); unset: sent unsigned.
    # The worker refuses to start without it in production-like environments.
    webhook_signing_secret: SecretStr | None = None
    outbox_batch_size: int = Field(default=20, ge=1)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_backoff_base_seconds: float = Field(default=1.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=300.0, gt=0)
    circuit_breaker_failure_threshold: int = Field(default=5, ge=1)
    circuit_breaker_reset_seconds: float = Field(default=30.0, gt=0)
    # A claimed event is leased to its worker this long; a worker killed mid-batch loses its
    # lease and the event is claimed again (at-least-once). Must exceed WEBHOOK_TIMEOUT_SECONDS.
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    # The worker's own /metrics; the host defaults to HOST (0.0.0.0 in containers).
    worker_metrics_host: str | None = None
    worker_metrics_port: int = Field(default=9100, ge=1, le=65535)
    # GET /health/live on that port answers 503 once the relay loop has not turned for this
    # long (a wedged loop; the kubelet restarts it). A turn takes at most the poll interval plus
    # one batch (bounded by WEBHOOK_TIMEOUT_SECONDS and the database timeouts).
    worker_liveness_stale_seconds: float = Field(default=60.0, gt=0)
    # The worker also deletes every user's expired idempotency keys this often (0: never; the API
    # then only drops a user's expired keys when that user writes again).
    idempotency_sweep_interval_seconds: float = Field(default=300.0, ge=0)

    # --- fault injection (for the alerting e2e test; refused in production) ---
    fault_injection_error_ratio: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        # Lists come from env vars as comma-separated strings (CORS_ORIGINS=a,b).
        if isinstance(data, dict):
            for key in ("cors_origins", "trusted_hosts"):
                value = data.get(key)
                if isinstance(value, str):
                    data[key] = [v.strip() for v in value.split(",") if v.strip()]
        return data

    @field_validator(
        "rate_limit_login",
        "rate_limit_login_account",
        "rate_limit_write",
        "rate_limit_read",
        "rate_limit_register",
    )
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        # Refused at start-up rather than on the first request: "5/minute", "100 per hour", ...
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '5/minute': {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment.is_deployed:
            if self.jwt_secret is not None:  # unset in dev/preview: a random per-process key
                self._refuse_weak_secret("JWT_SECRET", self.jwt_secret)
            if "*" in {part.strip() for part in self.forwarded_allow_ips.split(",")}:
                raise ValueError(
                    "FORWARDED_ALLOW_IPS='*' trusts every peer's X-Forwarded-For: "
                    "set the proxies' addresses or CIDRs"
                )
        if self.environment.is_production_like:
            self._refuse_weak_secret("JWT_SECRET", self.jwt_secret)
            # May be unset here: only the worker signs, and it refuses to start without it.
            if self.webhook_signing_secret is not None:
                self._refuse_weak_secret("WEBHOOK_SIGNING_SECRET", self.webhook_signing_secret)
            if self.fault_injection_error_ratio > 0:
                raise ValueError("FAULT_INJECTION_ERROR_RATIO is refused in production environments")
            # Load tests raise the limits (config/environments.yaml `load_testing`), never remove them.
            if not self.rate_limit_enabled:
                raise ValueError("RATE_LIMIT_ENABLED=false is refused in production environments")
            if "*" in self.cors_origins:
                raise ValueError("CORS_ORIGINS may not contain '*' in production environments")
        return self

    def _refuse_weak_secret(self, name: str, secret: SecretStr | None) -> None:
        value = secret.get_secret_value() if secret else ""
        if len(value) < MIN_SECRET_LENGTH or value.lower() in _KNOWN_WEAK_SECRETS:
            raise ValueError(
                f"{name} must be set to a random value of at least {MIN_SECRET_LENGTH} "
                f"characters when ENVIRONMENT={self.environment.value}"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings() -> Settings:
    """The settings from the environment, read when called (entry points call it once)."""
    return Settings()

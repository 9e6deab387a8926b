"""Typed configuration: per-queue settings and the worker's settings from the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker_runtime.core.backoff import RetryPolicy
from worker_runtime.core.cron_schedule import CronJob
from worker_runtime.core.keys import DEFAULT_EVENTS_MAX_LEN, DEFAULT_PREFIX, validate_queue_name
from worker_runtime.rate_limit import GroupRateLimit, RateLimit


def default_status_store_url() -> str:
    """SQLite under the user's state directory ($XDG_STATE_HOME/shoal, else
    ~/.local/state/shoal): a worker started in a project folder writes nothing there."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return f"sqlite+aiosqlite:///{Path(state) / 'shoal' / 'status.db'}"


class QueueConfig(BaseModel):
    """Per-queue behaviour (the seed's RETRY_CONFIGS / JOB_TIMEOUTS / RATE_LIMITS, in one place).

    ``concurrency`` None means the worker's default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int | None = Field(None, ge=1, le=10_000)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: float | None = Field(None, gt=0, description="per attempt; None = no limit")
    max_stalls: int = Field(1, ge=0, description="stalls tolerated before the job fails")
    dead_letter: bool = Field(True, description="final failures go to the dead-letter store")
    keep_completed: int = Field(
        1000, ge=-1, description="completed records kept: -1 all, 0 none, N newest N"
    )
    # --- flow control and scheduling (docs/flow-control.md) --------------------------------
    rate_limit: RateLimit | None = Field(
        None, description="queue-wide: at most max jobs started per per_seconds, all workers"
    )
    group_rate_limit: GroupRateLimit | None = Field(
        None, description="per value of a payload field (user, tenant): max per per_seconds"
    )
    events_max_len: int = Field(
        DEFAULT_EVENTS_MAX_LEN, ge=0, description="job events kept on the stream; 0 = no events"
    )
    cron: tuple[CronJob, ...] = Field((), description="repeatable jobs enqueued on a schedule")

    @field_validator("cron")
    @classmethod
    def _unique_cron_names(cls, value: tuple[CronJob, ...]) -> tuple[CronJob, ...]:
        names = [job.name for job in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"cron job names must be unique per queue: {', '.join(twice)}")
        return value


def redis_url_from_parts(
    *, host: str, port: int, password: str | None, db: int = 0, tls: bool = False
) -> str:
    scheme = "rediss" if tls else "redis"
    auth = f":{password}@" if password else ""
    return f"{scheme}://{auth}{host}:{port}/{db}"


def with_password(url: str, password: str | None) -> str:
    if not password:
        return url
    parts = urlsplit(url)
    if parts.password:
        return url
    user = quote(parts.username or "", safe="")
    netloc = f"{user}:{quote(password, safe='')}@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def with_ca_file(url: str, ca_file: str | None) -> str:
    """``url`` verifying the server's TLS certificate against the PEM bundle ``ca_file``.

    redis-py reads ``ssl_ca_certs`` from the URL's query, so every client made from the URL
    (standalone, Cluster, the operator's and the workers') trusts that CA and no other.
    """
    if not ca_file:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "ssl_ca_certs"]
    query.append(("ssl_ca_certs", ca_file))
    return urlunsplit(parts._replace(query=urlencode(query)))


class WorkerSettings(BaseSettings):
    """Worker settings from environment variables (names as in the seed) or a mounted file."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    redis_url: str | None = Field(None, alias="REDIS_URL")
    redis_host: str = Field("localhost", alias="REDIS_HOST")
    redis_port: int = Field(6379, alias="REDIS_PORT", ge=1, le=65535)
    redis_password: str | None = Field(None, alias="REDIS_PASSWORD")
    redis_tls: bool = Field(False, alias="REDIS_TLS")
    #: PEM CA bundle that signs the Redis server's certificate (a private CA; TLS only).
    redis_ca_file: str | None = Field(None, alias="REDIS_CA_FILE")
    key_prefix: str = Field(DEFAULT_PREFIX, alias="SHOAL_KEY_PREFIX")
    concurrency: int = Field(5, alias="WORKER_CONCURRENCY", ge=1, le=10_000)
    max_jobs_per_worker: int = Field(50, alias="WORKER_MAX_JOBS_PER_WORKER", ge=1, le=100_000)
    queues: list[str] | None = Field(None, alias="WORKER_QUEUES")
    shutdown_grace_seconds: float = Field(25.0, alias="WORKER_SHUTDOWN_GRACE_SECONDS", ge=0)
    lease_ms: int = Field(3000, alias="WORKER_LEASE_MS", ge=200)
    heartbeat_interval_seconds: float = Field(30.0, alias="WORKER_HEARTBEAT_INTERVAL", gt=0)
    fetch_batch: int = Field(100, alias="WORKER_FETCH_BATCH", ge=1, le=10_000)
    # gc.freeze() once started (see Worker.start). On in `shoal worker` (a process that runs
    # one worker for its life); off by default for a worker embedded in a larger process,
    # where anything alive at start would never be collected if it later became garbage.
    gc_freeze: bool = Field(False, alias="WORKER_GC_FREEZE")
    # Queue defaults from the pool (a WorkerPool's timeoutSeconds and retry); a processor's
    # own QueueConfig wins for the fields it sets explicitly.
    job_timeout_seconds: float | None = Field(None, alias="WORKER_TIMEOUT_SECONDS", gt=0)
    retry: RetryPolicy | None = Field(None, alias="WORKER_RETRY")
    # A WorkerPool's rateLimit ({"max": 50, "perSeconds": 1}), for every queue of the worker.
    rate_limit: RateLimit | None = Field(None, alias="WORKER_RATE_LIMIT")

    # --- observability (worker_runtime.observing.observability wires these) ----------------
    health_checks_enabled: bool = Field(True, alias="ENABLE_HEALTH_CHECKS")
    health_host: str = Field("0.0.0.0", alias="HEALTH_HOST")
    health_port: int = Field(9091, alias="HEALTH_PORT", ge=0, le=65535, description="0 = any")
    liveness_missed_heartbeats: int = Field(
        3, alias="WORKER_LIVENESS_MISSED_HEARTBEATS", ge=1, description="/livez fails after N"
    )
    metrics_enabled: bool = Field(True, alias="METRICS_ENABLED")
    queue_metrics_interval_seconds: float = Field(15.0, alias="QUEUE_METRICS_INTERVAL", gt=0)
    log_format: Literal["auto", "json", "console"] = Field("auto", alias="LOG_FORMAT")
    log_level: str = Field("info", alias="LOG_LEVEL")
    log_job_payloads: bool = Field(False, alias="LOG_JOB_PAYLOADS")
    status_store_enabled: bool = Field(True, alias="STATUS_STORE_ENABLED")
    status_store_url: str = Field(
        default_factory=lambda: default_status_store_url(), alias="STATUS_STORE_URL"
    )
    # Finished rows kept (0: no limit); pruned by the writer every STATUS_STORE_PRUNE_INTERVAL.
    status_store_retention_seconds: float = Field(
        7 * 24 * 3600.0, alias="STATUS_STORE_RETENTION_SECONDS", ge=0
    )
    status_store_max_rows: int = Field(1_000_000, alias="STATUS_STORE_MAX_ROWS", ge=0)
    status_store_prune_seconds: float = Field(60.0, alias="STATUS_STORE_PRUNE_INTERVAL", gt=0)
    status_owner_field: str | None = Field("userId", alias="STATUS_OWNER_FIELD")
    status_store_dead_letters: bool = Field(True, alias="STATUS_STORE_DEAD_LETTERS")
    status_store_flush_seconds: float = Field(0.5, alias="STATUS_STORE_FLUSH_INTERVAL", gt=0)
    status_store_buffer_max: int = Field(100_000, alias="STATUS_STORE_BUFFER_MAX", ge=1)
    alert_webhook_url: str | None = Field(None, alias="ALERT_WEBHOOK_URL")
    alert_max_per_minute: int = Field(10, alias="ALERT_MAX_PER_MINUTE", ge=1)

    @field_validator("retry", "rate_limit", mode="before")
    @classmethod
    def _json_retry(cls, value: object) -> object:
        # The environment gives JSON text; pydantic-settings decodes it only for env sources.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("queues", mode="before")
    @classmethod
    def _split_queues(cls, value: object) -> object:
        if isinstance(value, str):
            return [q.strip() for q in value.split(",") if q.strip()]
        return value

    @field_validator("queues")
    @classmethod
    def _valid_queues(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for name in value:
                validate_queue_name(name)
        return value

    def queue_defaults(self) -> QueueConfig:
        """The QueueConfig a processor gets for every field it does not set itself."""
        fields: dict[str, object] = {}
        if self.job_timeout_seconds is not None:
            fields["timeout_seconds"] = self.job_timeout_seconds
        if self.retry is not None:
            fields["retry"] = self.retry
        if self.rate_limit is not None:
            fields["rate_limit"] = self.rate_limit
        return QueueConfig.model_validate(fields)

    def resolved_redis_url(self) -> str:
        if self.redis_url:
            # A password from REDIS_PASSWORD (a Secret in Kubernetes) joins a URL without one.
            url = with_password(self.redis_url, self.redis_password)
        else:
            url = redis_url_from_parts(
                host=self.redis_host,
                port=self.redis_port,
                password=self.redis_password,
                tls=self.redis_tls,
            )
        return with_ca_file(url, self.redis_ca_file)

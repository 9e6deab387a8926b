"""How a WorkerPool spec becomes a worker's environment (pure; shared by both drivers).

The operator puts these in the pod template and `shoal up` in each process's environment, so a
pool behaves the same on a laptop and in a cluster. The Redis password is never here: the
operator adds ``REDIS_PASSWORD`` from the Secret by reference (``secretKeyRef``).
"""

from __future__ import annotations

from worker_runtime.core.spec import RedisSpec, WorkerPoolSpec

#: Seconds a pod gets beyond the job timeout to hand back unfinished jobs and exit.
SHUTDOWN_MARGIN_SECONDS = 15


def redis_url_of(redis: RedisSpec | None, *, default: str | None) -> str | None:
    """The pool's Redis URL (no password in it), or ``default`` when the pool names none."""
    if redis is None or redis.is_default():
        return default
    if redis.url:
        return redis.url
    scheme = "rediss" if redis.uses_tls() else "redis"
    user = f"{redis.username}@" if redis.username else ""
    return f"{scheme}://{user}{redis.host}:{redis.port or 6379}/{redis.db or 0}"


def key_prefix_of(spec: WorkerPoolSpec, *, default: str) -> str:
    """The prefix of the pool's Redis keys: spec.redis.keyPrefix, else the driver's default."""
    if spec.redis is not None and spec.redis.key_prefix is not None:
        return spec.redis.key_prefix
    return default


def termination_grace_seconds(spec: WorkerPoolSpec) -> int:
    """Long enough for the longest job to finish, plus a margin to hand the rest back."""
    return spec.timeout_seconds + SHUTDOWN_MARGIN_SECONDS


def worker_env(spec: WorkerPoolSpec) -> dict[str, str]:
    """The worker settings of a pool as environment variables (`WorkerSettings` reads them)."""
    env = {
        "WORKER_QUEUES": ",".join(spec.queues),
        "WORKER_CONCURRENCY": str(spec.concurrency),
        "WORKER_MAX_JOBS_PER_WORKER": str(spec.max_jobs_per_worker),
        "WORKER_TIMEOUT_SECONDS": str(spec.timeout_seconds),
        "WORKER_RETRY": spec.retry.model_dump_json(by_alias=True),
        # Drain for as long as a job may run; the pod's grace period adds a margin on top.
        "WORKER_SHUTDOWN_GRACE_SECONDS": str(spec.timeout_seconds),
    }
    if spec.rate_limit is not None:
        env["WORKER_RATE_LIMIT"] = spec.rate_limit.model_dump_json(by_alias=True)
    if spec.redis is not None and spec.redis.key_prefix is not None:
        env["SHOAL_KEY_PREFIX"] = spec.redis.key_prefix
    return env

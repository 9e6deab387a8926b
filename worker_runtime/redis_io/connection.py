"""Redis connections: one place that decides timeouts, reconnects and standalone vs Cluster.

A URL with the scheme ``redis+cluster://`` (or ``rediss+cluster://``) names a Redis Cluster seed
node; every queue's keys share one hash tag, so each script runs on one node.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Errors that mean "Redis is unreachable right now": retry with backoff, report in health.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    ConnectionError,
    OSError,
)

#: What a worker's loops retry with backoff and report as Redis trouble: any Redis error.
#: Besides outages this covers replies such as DENIED (protected mode), OOM, READONLY (a
#: failover in progress) and NOPERM, which an operator fixes while the worker waits; a loop
#: that died on them would leave a pod alive but idle forever.
WORKER_RETRY_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, RedisError)


def is_script_error(exc: BaseException) -> bool:
    """A Lua script failed while it ran (a bug, or a key holding garbage it did not expect).

    Not an outage: Redis answered, and the same call would fail the same way again, so it is
    reported as what it is and not retried as if Redis were down.
    """
    if not isinstance(exc, ResponseError) or isinstance(exc, NoScriptError):
        return False
    text = str(exc)
    return "@user_script:" in text or "Error running script" in text


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")

#: Either client; both offer the commands and scripting the runtime uses.
RedisClient = aioredis.Redis


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def connect(
    url: str, *, max_connections: int = 64, socket_timeout: float | None = 30.0
) -> RedisClient:
    """An asyncio client with short connect timeouts and a few quick command retries.

    Longer outages surface as CONNECTION_ERRORS to the caller, which backs off itself
    (so health can report the outage instead of hiding it behind a long retry).
    ``socket_timeout`` bounds every reply: a half-open connection must not hang a loop forever
    (a blocking command's caller passes more than its own block time).
    """
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2.0,
        "socket_timeout": socket_timeout,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "max_connections": max_connections,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
    }
    if is_cluster_url(url):
        plain = url.replace("+cluster://", "://", 1)
        # The cluster client raises instead of waiting when a node's pool is full: be generous.
        common["max_connections"] = max(max_connections, 512)
        cluster: Any = RedisCluster.from_url(plain, **common)
        return cluster  # type: ignore[no-any-return]
    # A blocking pool makes a burst of callers wait for a connection instead of failing.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, timeout=10, retry_on_error=[RedisConnectionError, RedisTimeoutError], **common
    )
    return aioredis.Redis(connection_pool=pool)


async def ensure_ready(client: RedisClient) -> None:
    """Initialise a Cluster client before concurrent use.

    redis-py's async cluster client can fail concurrent first commands while it discovers the
    nodes ("'NoneType' object has no attribute 'writelines'"); one awaited initialise avoids it.
    """
    if isinstance(client, RedisCluster):
        await client.initialize()

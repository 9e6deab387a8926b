"""Redis connections: one place that decides timeouts and reconnect behaviour."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Errors that mean "Redis is unreachable right now": retry with backoff, report in health.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    OSError,
)


def connect(url: str, *, max_connections: int = 64, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client with short connect timeouts and a few quick command retries.

    Longer outages surface as CONNECTION_ERRORS to the caller, which backs off itself
    (so health can report the outage instead of hiding it behind a long retry).
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_keepalive=True,
        health_check_interval=15,
        max_connections=max_connections,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **kwargs,
    )

"""Checks of the Redis server's configuration that a worker makes at start.

Job hashes, leases and the dead-letter store are ordinary keys: a ``maxmemory-policy`` other
than ``noeviction`` lets Redis delete them silently when memory is full (jobs vanish, leased
jobs are never reclaimed). With ``noeviction`` a full Redis refuses writes instead, which
producers and workers see and report.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

SAFE_POLICY = "noeviction"


def eviction_warning(policy: str | None) -> str | None:
    """The warning for a ``maxmemory-policy`` (None: safe, or unknown)."""
    if policy is None or policy == SAFE_POLICY:
        return None
    return (
        f"Redis maxmemory-policy is {policy}: when memory is full Redis deletes keys, job data "
        f"included, without a trace; set maxmemory-policy {SAFE_POLICY}"
    )


async def redis_config_warnings(client: Any) -> list[str]:
    """What is unsafe in the server's configuration (empty when CONFIG is not allowed, as on
    some managed services: nothing can be told then)."""
    try:
        reply = await client.config_get("maxmemory-policy")
    except RedisError:
        return []
    warning = eviction_warning(reply.get("maxmemory-policy") if isinstance(reply, dict) else None)
    return [warning] if warning else []

"""Rate limits of a queue: queue-wide (across every worker) and per group (a payload field).

Both are enforced inside ``fetch.lua`` with a sliding window kept in Redis, so they hold with
any number of worker processes; a limited job waits (it is never failed). See
docs/flow-control.md for the window maths and the group parking.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateLimit(BaseModel):
    """At most ``max`` jobs started per ``per_seconds``, across all workers of the queue.

    Accepts the WorkerPool spelling too: ``{"max": 50, "perSeconds": 1}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max: int = Field(ge=1, le=1_000_000, description="jobs per window")
    per_seconds: float = Field(1.0, gt=0, le=86400, alias="perSeconds")

    @property
    def window_ms(self) -> int:
        return max(1, round(self.per_seconds * 1000))


class GroupRateLimit(RateLimit):
    """At most ``max`` jobs per ``per_seconds`` for each value of the payload field ``key``
    (a user or tenant id). Jobs without the field are not group-limited."""

    key: str = Field(min_length=1, max_length=200, description="payload field naming the group")


def fetch_limit_args(
    rate_limit: RateLimit | None, group_rate_limit: GroupRateLimit | None
) -> list[str | int]:
    """ARGV[4..8] of fetch.lua: queue max, queue window ms, group field, group max, window ms.

    Zeros and an empty field mean "no limit", so an unlimited queue runs the plain path.
    """
    args: list[str | int] = (
        [0, 1000] if rate_limit is None else [rate_limit.max, rate_limit.window_ms]
    )
    if group_rate_limit is None:
        args += ["", 0, 1000]
    else:
        args += [group_rate_limit.key, group_rate_limit.max, group_rate_limit.window_ms]
    return args

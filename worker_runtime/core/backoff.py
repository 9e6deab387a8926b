"""Retry policy maths: how long to wait before the next attempt (pure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Backoff(BaseModel):
    """How the delay between attempts grows. Mirrors the manifest's ``retry.backoff``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["fixed", "exponential"] = "exponential"
    delay_seconds: float = Field(1.0, ge=0, alias="delaySeconds")
    max_delay_seconds: float = Field(300.0, ge=0, alias="maxDelaySeconds")
    jitter: bool = True

    @model_validator(mode="after")
    def _max_not_below_delay(self) -> Backoff:
        if self.max_delay_seconds < self.delay_seconds:
            raise ValueError("maxDelaySeconds must be >= delaySeconds")
        return self


class RetryPolicy(BaseModel):
    """Attempts in total (1 = no retry) and the backoff between them."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    attempts: int = Field(3, ge=1, le=1000)
    backoff: Backoff = Field(default_factory=Backoff)


def retry_delay_ms(
    backoff: Backoff, *, attempts_made: int, random: Callable[[], float] | None = None
) -> int:
    """Delay before the next attempt after ``attempts_made`` failed attempts (>= 1).

    Exponential: delay * 2**(n-1), capped at max. Jitter is "equal jitter": a uniform draw
    in [d/2, d], so retries of a burst spread out but never collapse to zero wait.
    ``random`` returns a float in [0, 1); passing it keeps this function pure in tests.
    """
    if attempts_made < 1:
        raise ValueError("attempts_made must be >= 1")
    base = backoff.delay_seconds
    if backoff.type == "exponential":
        # Cap the exponent before raising 2 to it: 2**1000 floats fine, but keep it cheap.
        base = base * (2 ** min(attempts_made - 1, 62))
    delay = min(base, backoff.max_delay_seconds)
    if backoff.jitter and random is not None:
        delay = delay / 2 + (delay / 2) * random()
    return round(delay * 1000)


def should_retry(policy: RetryPolicy, *, attempts_made: int, retryable: bool) -> bool:
    """True when another attempt is due after ``attempts_made`` attempts have failed."""
    return retryable and attempts_made < policy.attempts

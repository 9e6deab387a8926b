import pytest
from pydantic import ValidationError

from worker_runtime.core.backoff import Backoff, RetryPolicy, retry_delay_ms, should_retry


@pytest.mark.parametrize(
    ("kind", "attempts", "expected"),
    [
        ("fixed", 1, 2000),
        ("fixed", 5, 2000),
        ("exponential", 1, 2000),
        ("exponential", 2, 4000),
        ("exponential", 3, 8000),
        ("exponential", 10, 60000),  # capped
        ("exponential", 500, 60000),  # huge exponent stays capped, no overflow
    ],
)
def test_delay_without_jitter(kind: str, attempts: int, expected: int) -> None:
    b = Backoff(type=kind, delay_seconds=2, max_delay_seconds=60, jitter=False)  # type: ignore[arg-type]
    assert retry_delay_ms(b, attempts_made=attempts) == expected


def test_jitter_stays_between_half_and_full_delay() -> None:
    b = Backoff(type="exponential", delay_seconds=1, max_delay_seconds=100, jitter=True)
    assert retry_delay_ms(b, attempts_made=3, random=lambda: 0.0) == 2000
    assert retry_delay_ms(b, attempts_made=3, random=lambda: 0.999999) == 4000
    assert retry_delay_ms(b, attempts_made=3, random=lambda: 0.5) == 3000


def test_attempts_made_must_be_positive() -> None:
    with pytest.raises(ValueError, match="attempts_made"):
        retry_delay_ms(Backoff(), attempts_made=0)


def test_max_below_delay_is_rejected_with_field_names() -> None:
    with pytest.raises(ValidationError, match="maxDelaySeconds must be >= delaySeconds"):
        Backoff(delay_seconds=10, max_delay_seconds=1)


def test_manifest_aliases_parse() -> None:
    policy = RetryPolicy.model_validate(
        {"attempts": 4, "backoff": {"type": "fixed", "delaySeconds": 3, "maxDelaySeconds": 9}}
    )
    assert policy.backoff.delay_seconds == 3
    assert policy.backoff.max_delay_seconds == 9


@pytest.mark.parametrize(
    ("attempts_made", "retryable", "expected"),
    [(1, True, True), (2, True, True), (3, True, False), (1, False, False)],
)
def test_should_retry(attempts_made: int, retryable: bool, expected: bool) -> None:
    policy = RetryPolicy(attempts=3)
    assert should_retry(policy, attempts_made=attempts_made, retryable=retryable) is expected

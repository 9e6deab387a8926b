import pytest

from worker_runtime.core.keys import InvalidQueueName, QueueKeys, validate_queue_name


def test_every_queue_key_shares_one_hash_tag() -> None:
    k = QueueKeys("emails")
    keys = [k.wait, k.active, k.delayed, k.completed, k.failed, k.dead, k.stats, k.marker,
            k.job("abc")]  # fmt: skip
    assert all("{emails}" in key for key in keys)
    assert all(key.count("{") == 1 for key in keys)
    assert len(set(keys)) == len(keys)


def test_prefix_is_applied() -> None:
    assert QueueKeys("q", "tenant1").wait == "tenant1:{q}:wait"
    assert QueueKeys("q").job("7") == "shoal:{q}:job:7"


@pytest.mark.parametrize("name", ["emails", "a", "img.resize-v2_x", "0" * 63])
def test_valid_names(name: str) -> None:
    assert validate_queue_name(name) == name


@pytest.mark.parametrize("name", ["", "Emails", "-x", "a b", "a{b}", "0" * 64, "é"])
def test_invalid_names_are_named_in_the_error(name: str) -> None:
    with pytest.raises(InvalidQueueName, match="invalid queue name"):
        validate_queue_name(name)

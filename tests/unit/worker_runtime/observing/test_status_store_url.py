"""STATUS_STORE_URL spellings map to the async drivers; anything else is a one-line error."""

from __future__ import annotations

import pytest

from worker_runtime.observing.status_store import InvalidStoreUrl, async_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///status.db", "sqlite+aiosqlite:///status.db"),
        ("sqlite+aiosqlite:////var/lib/shoal/s.db", "sqlite+aiosqlite:////var/lib/shoal/s.db"),
        ("postgresql://u:p@db:5432/jobs", "postgresql+asyncpg://u:p@db:5432/jobs"),
        ("postgresql+psycopg://u@db/jobs", "postgresql+asyncpg://u@db/jobs"),
    ],
)
def test_async_driver_is_chosen(given: str, expected: str) -> None:
    assert async_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://db/jobs", "not a url"])
def test_unsupported_urls_name_the_setting(bad: str) -> None:
    with pytest.raises(InvalidStoreUrl, match="STATUS_STORE_URL"):
        async_url(bad)

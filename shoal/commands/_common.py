"""Options and error handling shared by the subcommands: one-line errors, never a traceback."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.core.spec_rules import KEY_PREFIX
from worker_runtime.redis_io.connection import CONNECTION_ERRORS

T = TypeVar("T")

redis_url_option = click.option(
    "--redis-url",
    envvar="REDIS_URL",
    default="redis://localhost:6379/0",
    show_default=True,
    show_envvar=True,
    help="Redis to use.",
)


def _key_prefix(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not re.match(KEY_PREFIX, value):
        raise click.BadParameter(
            f"{value!r}: use 1-63 characters of letters, digits, '.', '_', ':' or '-' (no braces: "
            "the queue's {hash tag} must stay the only one)"
        )
    return value


key_prefix_option = click.option(
    "--key-prefix",
    envvar="SHOAL_KEY_PREFIX",
    default=DEFAULT_PREFIX,
    show_default=True,
    show_envvar=True,
    callback=_key_prefix,
    help="Prefix of the queue's Redis keys (a WorkerPool's spec.redis.keyPrefix).",
)


def run_async(coro_fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command body; turn Redis outages into a one-line error and exit 1."""

    @functools.wraps(coro_fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return asyncio.run(coro_fn(*args, **kwargs))
        except CONNECTION_ERRORS as exc:
            url = kwargs.get("redis_url", "")
            raise click.ClickException(f"cannot reach Redis at {url}: {exc}") from None

    return wrapper

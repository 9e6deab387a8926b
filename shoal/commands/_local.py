"""What the local runs (`shoal up`, `shoal demo`) share: their options and their Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from worker_runtime.redis_io.embedded_redis import EmbeddedRedisError
from worker_runtime.supervisor.redis_target import RedisTarget
from worker_runtime.supervisor.run_local import redis_for


def shown_option(
    flag: str, kind: click.ParamType[Any], default: Any, help: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option whose default `--help` shows."""
    return click.option(flag, type=kind, default=default, show_default=True, help=help)


output_option = shown_option(
    "--output",
    click.Choice(["auto", "live", "json"]),
    "auto",
    "live view, or JSON lines (auto: live on a terminal).",
)


@contextmanager
def local_redis(target: RedisTarget, note: Callable[[str], None]) -> Iterator[str]:
    """The target's Redis URL, or a private Redis for the duration (noted when it starts).

    A private Redis that cannot start is a one-line error, not a traceback.
    """
    try:
        with redis_for(
            target, started=lambda url: note(f"started a private Redis at {url}")
        ) as url:
            yield url
    except EmbeddedRedisError as exc:
        raise click.ClickException(str(exc)) from None

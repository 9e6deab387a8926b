"""Loads the Lua scripts shipped as .lua files and binds them to a Redis client."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

SCRIPT_NAMES = (
    "enqueue",
    "fetch",
    "complete",
    "fail",
    "extend",
    "reclaim",
    "release",
    "replay",
    "purge",
    "remove",
    "progress",
    "observe",
)


@cache
def script_source(name: str) -> str:
    return (files("worker_runtime.lua") / f"{name}.lua").read_text()


class Scripts:
    """Registered scripts (EVALSHA with a transparent reload after a Redis restart)."""

    def __init__(self, redis: Any) -> None:
        for name in SCRIPT_NAMES:
            setattr(self, name, redis.register_script(script_source(name)))

    enqueue: Any
    fetch: Any
    complete: Any
    fail: Any
    extend: Any
    reclaim: Any
    release: Any
    replay: Any
    purge: Any
    remove: Any
    progress: Any
    observe: Any

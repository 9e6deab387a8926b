"""Loads the Lua scripts shipped as .lua files and binds them to a Redis client."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from redis.client import NEVER_DECODE
from redis.exceptions import NoScriptError

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
    "decodable",
)


#: Scripts that only read: allowed on a replica and while Redis is out of memory.
READ_ONLY_SCRIPTS = frozenset({"observe"})

#: Functions shared by several scripts (a .lua file each), prepended to the scripts that use
#: them: the lease clock, for those that set or judge lease deadlines; a flow child's failure
#: and its parent's readiness, for those that end a child (for good, or by removing it).
SHARED_FUNCTIONS = {
    "lease_clock": frozenset({"fetch", "extend", "reclaim"}),
    "child_failed": frozenset({"fail", "reclaim", "cancel", "fetch", "complete", "remove"}),
}


@cache
def script_source(name: str) -> str:
    """The script with Redis 7 script flags (and the functions it shares) prepended.

    A flagged script is refused as a whole while Redis is over ``maxmemory`` (-OOM), before it
    runs. Without flags Redis would refuse only its first memory-using command, after earlier
    writes (say the LPOP of a fetch) were applied: a job could vanish between two structures.
    """
    flags = "#!lua flags=no-writes" if name in READ_ONLY_SCRIPTS else "#!lua"
    lua = files("worker_runtime.redis_io.lua")
    shared = "".join(
        (lua / f"{fn}.lua").read_text() for fn, users in SHARED_FUNCTIONS.items() if name in users
    )
    return f"{flags}\n{shared}" + (lua / f"{name}.lua").read_text()


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
    decodable: Any


async def call_undecoded(
    script: Any, client: Any, *, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """Run a registered script with its reply left as bytes (the client decodes every other
    reply): one value that is not UTF-8 then fails only its own job, not the whole reply."""
    command = ("EVALSHA", script.sha, len(keys), *keys, *args)
    try:
        return await client.execute_command(*command, **{NEVER_DECODE: True})
    except NoScriptError:  # Redis restarted (or a new node): load it, as redis-py's Script does
        await client.script_load(script.script)
        return await client.execute_command(*command, **{NEVER_DECODE: True})

"""The Lua scripts of the flow-control features (cancel, cron, flow), bound to a client.

Loaded like `worker_runtime.redis_io.scripts.Scripts` (EVALSHA with a transparent reload); kept
apart so the core loader's list stays as it is.
"""

from __future__ import annotations

from typing import Any

from worker_runtime.redis_io.scripts import script_source

CONTROL_SCRIPT_NAMES = ("cancel", "cron", "flow")


class ControlScripts:
    def __init__(self, redis: Any) -> None:
        for name in CONTROL_SCRIPT_NAMES:
            setattr(self, name, redis.register_script(script_source(name)))

    cancel: Any
    cron: Any
    flow: Any

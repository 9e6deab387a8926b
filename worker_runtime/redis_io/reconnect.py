"""Capped exponential backoff for reconnect loops (with jitter so pods don't stampede)."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    def __init__(self, *, base: float = 0.05, cap: float = 5.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2.0**self.failures)
        self.failures = min(self.failures + 1, 30)
        return delay / 2 + random.random() * delay / 2

    def reset(self) -> None:
        self.failures = 0

    async def sleep(self) -> None:
        await asyncio.sleep(self.next_delay())

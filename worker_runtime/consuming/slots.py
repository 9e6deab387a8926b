"""The worker-wide cap on jobs in flight across all queues (the seed's maxJobsPerWorker)."""

from __future__ import annotations

import asyncio


class Slots:
    """A counting budget that consumers take from before fetching and give back after.

    Giving slots back wakes every consumer (each waits on its own event), so a queue that
    was starved by the shared cap resumes as soon as any queue frees room.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._listeners: list[asyncio.Event] = []

    @property
    def available(self) -> int:
        return self.capacity - self.used

    def subscribe(self, event: asyncio.Event) -> None:
        self._listeners.append(event)

    def take(self, n: int) -> None:
        self.used += n

    def give(self, n: int) -> None:
        if n:
            self.used -= n
            for event in self._listeners:
                event.set()

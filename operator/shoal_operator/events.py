"""Kubernetes Events on WorkerPools: one per scale decision and per error.

Posted in the background (a slow API server must not stall the scaling loop); a failure to post
is logged and counted, never raised. Errors that persist are reported once per change of their
message (``Reporter``), not once per tick.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from shoal_operator.conditions import iso
from shoal_operator.kube import ApiError, KubeApi, events_path
from shoal_operator.state import PoolState
from shoal_operator.telemetry import Telemetry, logger

EventType = Literal["Normal", "Warning"]
COMPONENT = "shoal-operator"

log = logger("shoal.operator.events")


def event_body(
    *,
    namespace: str,
    name: str,
    uid: str | None,
    type: EventType,
    reason: str,
    message: str,
    now: datetime,
    instance: str | None,
) -> dict[str, Any]:
    """A core/v1 Event about WorkerPool ``namespace/name`` (pure)."""
    when = iso(now)
    involved: dict[str, Any] = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "namespace": namespace,
        "name": name,
    }
    if uid:
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": involved,
        "type": type,
        "reason": reason,
        "message": " ".join(message.split())[:1024],
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
        "source": {"component": COMPONENT},
        "reportingComponent": f"shoal.dev/{COMPONENT}",
        "reportingInstance": instance or COMPONENT,
    }


class EventRecorder:
    def __init__(self, api: KubeApi, telemetry: Telemetry, *, instance: str | None) -> None:
        self._api = api
        self._telemetry = telemetry
        self._instance = instance
        self._tasks: set[asyncio.Task[None]] = set()

    def post(self, state: PoolState, *, type: EventType, reason: str, message: str) -> None:
        body = event_body(
            namespace=state.namespace,
            name=state.name,
            uid=state.uid,
            type=type,
            reason=reason,
            message=message,
            now=datetime.now(UTC),
            instance=self._instance,
        )
        task = asyncio.create_task(self._send(state.namespace, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def report(
        self, state: PoolState, *, kind: str, reason: str, message: str | None, resolved: str
    ) -> None:
        """A Warning when error ``kind`` appears or its message changes; Normal ``resolved`` after.

        ``message`` None means the error is gone.
        """
        before = state.reported.get(kind)
        if message is None:
            if before is not None:
                del state.reported[kind]
                self.post(state, type="Normal", reason=resolved, message=f"recovered: {before}")
            return
        if message != before:
            state.reported[kind] = message
            self.post(state, type="Warning", reason=reason, message=message)

    async def _send(self, namespace: str, body: dict[str, Any]) -> None:
        try:
            await self._api.create(events_path(namespace), body)
        except ApiError as exc:
            self._telemetry.errors.labels("event").inc()
            log.warning("event not posted", error=str(exc), reason=body["reason"])

    async def flush(self) -> None:
        """Wait for the events in flight (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
